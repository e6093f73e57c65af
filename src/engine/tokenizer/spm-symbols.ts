// Symbols of the SentencePiece merge as integers: a code point is its token's id, or (if it is
// no token) an id past the vocabulary; a merged symbol is the token it forms. Which token two
// adjacent symbols form comes from a table of every token's splits into two symbols, keyed by
// the id pair: a merge looks up integers instead of building the joined string and hashing it
// (what merging new words spent most of its time on). Built on first use: stories15M's 32,000
// tokens have 61,000 such splits (a 2 MB table).

import type { Vocab } from "./vocab.ts";

/** The value of a pair that forms no token. */
export const NO_TOKEN = -1;
const EMPTY = -1;

/** Whether s is one code point. */
function oneCodePoint(s: string): boolean {
  if (s.length === 1) return true;
  const c = s.charCodeAt(0);
  return s.length === 2 && c >= 0xd800 && c <= 0xdbff;
}

const hash = (a: number, b: number) => (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca6b)) >>> 0;

export class SpmSymbols {
  private readonly n: number;
  /** Code points' symbols (BMP by code unit; others in the map). */
  private readonly bmp: Int32Array;
  private readonly astral = new Map<number, number>();
  /** The text of each code point past the vocabulary, by id - n. */
  private readonly extraTexts: string[] = [];
  private readonly extraIds = new Map<string, number>();
  /** The splits: per slot [left, right, token, unused], one cache line holding four slots. */
  private table: { mask: number; slots: Int32Array } | null = null;

  constructor(private readonly vocab: Vocab) {
    this.n = vocab.tokens.length;
    this.bmp = new Int32Array(0x10000).fill(-2);
  }

  /** Whether a symbol id is a token (else a code point the vocabulary lacks). */
  isToken(id: number): boolean {
    return id < this.n;
  }

  text(id: number): string {
    return id < this.n ? this.vocab.tokens[id] : this.extraTexts[id - this.n];
  }

  /** The symbol of the code point at text[i] (`units` its UTF-16 length, 1 or 2). */
  ofCodePoint(text: string, i: number, units: number): number {
    if (units === 1) {
      const c = text.charCodeAt(i);
      let id = this.bmp[c];
      if (id === -2) this.bmp[c] = id = this.symbolOf(text[i]);
      return id;
    }
    const cp = text.codePointAt(i)!;
    let id = this.astral.get(cp);
    if (id === undefined) this.astral.set(cp, (id = this.symbolOf(text.substr(i, 2))));
    return id;
  }

  /** The token two adjacent symbols form, or NO_TOKEN. */
  joined(a: number, b: number): number {
    const t = (this.table ??= this.build());
    const slots = t.slots;
    for (let slot = hash(a, b) & t.mask; ; slot = (slot + 1) & t.mask) {
      const at = slot << 2;
      const l = slots[at];
      if (l === EMPTY) return NO_TOKEN;
      if (l === a && slots[at + 1] === b) return slots[at + 2];
    }
  }

  /** A one-code-point text's symbol: its token, or an id past the vocabulary. */
  private symbolOf(ch: string): number {
    const id = this.vocab.textToId.get(ch);
    if (id !== undefined) return id;
    let extra = this.extraIds.get(ch);
    if (extra === undefined) {
      extra = this.n + this.extraTexts.length;
      this.extraTexts.push(ch);
      this.extraIds.set(ch, extra);
    }
    return extra;
  }

  /** Every token's splits at a code-point boundary into two symbols (tokens or single code points). */
  private build() {
    const lefts: number[] = [], rights: number[] = [], tokens: number[] = [];
    const part = (s: string) => this.vocab.textToId.get(s) ?? (oneCodePoint(s) ? this.symbolOf(s) : -1);
    for (const [text, id] of this.vocab.textToId) {
      for (let k = 1; k < text.length; k++) {
        const c = text.charCodeAt(k);
        if (c >= 0xdc00 && c <= 0xdfff) continue; // inside a surrogate pair
        const a = part(text.slice(0, k));
        if (a < 0) continue;
        const b = part(text.slice(k));
        if (b < 0) continue;
        lefts.push(a);
        rights.push(b);
        tokens.push(id);
      }
    }
    let size = 1;
    while (size < 2 * lefts.length + 2) size *= 2;
    const t = { mask: size - 1, slots: new Int32Array(4 * size).fill(EMPTY) };
    for (let i = 0; i < lefts.length; i++) {
      let slot = hash(lefts[i], rights[i]) & t.mask;
      while (t.slots[4 * slot] !== EMPTY && !(t.slots[4 * slot] === lefts[i] && t.slots[4 * slot + 1] === rights[i])) slot = (slot + 1) & t.mask;
      t.slots[4 * slot] = lefts[i];
      t.slots[4 * slot + 1] = rights[i];
      t.slots[4 * slot + 2] = tokens[i];
    }
    return t;
  }
}
