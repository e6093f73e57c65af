// Symbols of the SentencePiece merge as integers: a code point is its token's id, or (if it is
// no token) an id past the vocabulary; a merged symbol is the token it forms. Which token two
// adjacent symbols form is remembered by id pair, so a merge looks up a pair of integers in a
// flat table instead of building the joined string and hashing it (what a merge of new words
// spends most of its time on). The table is a cache: bounded, cleared when full.

import type { Vocab } from "./vocab.ts";

/** Slots of the pair table (a power of two); cleared at 3/4 full. */
const PAIR_SLOTS = 1 << 18;
const EMPTY = -2;
/** The value of a pair that forms no token. */
export const NO_TOKEN = -1;

export class SpmSymbols {
  private readonly n: number;
  private readonly charIds = new Map<number, number>();
  /** The text of each code point past the vocabulary, by id - n. */
  private readonly extraTexts: string[] = [];
  private readonly left = new Int32Array(PAIR_SLOTS);
  private readonly right = new Int32Array(PAIR_SLOTS);
  private readonly value = new Int32Array(PAIR_SLOTS);
  private used = 0;

  constructor(private readonly vocab: Vocab) {
    this.n = vocab.tokens.length;
    this.left.fill(EMPTY);
  }

  /** Whether a symbol id is a token (else a code point the vocabulary lacks). */
  isToken(id: number): boolean {
    return id < this.n;
  }

  text(id: number): string {
    return id < this.n ? this.vocab.tokens[id] : this.extraTexts[id - this.n];
  }

  /** The symbol of one code point (`ch` its text). */
  ofCodePoint(cp: number, ch: string): number {
    let id = this.charIds.get(cp);
    if (id === undefined) {
      id = this.vocab.textToId.get(ch);
      if (id === undefined) {
        id = this.n + this.extraTexts.length;
        this.extraTexts.push(ch);
      }
      this.charIds.set(cp, id);
    }
    return id;
  }

  /** The token two adjacent symbols form, or NO_TOKEN. */
  joined(a: number, b: number): number {
    const mask = PAIR_SLOTS - 1;
    let slot = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca6b)) >>> 14 & mask;
    for (;;) {
      const l = this.left[slot];
      if (l === EMPTY) break;
      if (l === a && this.right[slot] === b) return this.value[slot];
      slot = (slot + 1) & mask;
    }
    const id = this.vocab.textToId.get(this.text(a) + this.text(b)) ?? NO_TOKEN;
    if (this.used >= (PAIR_SLOTS * 3) >> 2) {
      this.left.fill(EMPTY);
      this.used = 0;
      return id;
    }
    this.left[slot] = a;
    this.right[slot] = b;
    this.value[slot] = id;
    this.used++;
    return id;
  }
}
