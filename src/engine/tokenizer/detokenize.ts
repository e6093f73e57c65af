// From ids back to text, the way llama.cpp's llama_detokenize does it: each token becomes the
// bytes of its piece (byte tokens are single bytes, so a character may span several tokens), the
// bytes are joined and only then read as UTF-8. The stream decoder does the same incrementally,
// holding back the bytes of a character not yet complete.

import { TokenType, TokenizerError, type DecodeOptions, type StreamDecoder } from "./types.ts";
import type { Vocab } from "./vocab.ts";

export interface PieceSource {
  /** The bytes a token stands for, and whether it is a control/unknown token (skippable). */
  piece(id: number): { bytes: Uint8Array; special: boolean };
}

/**
 * A vocabulary's pieces, cached per id. Control, unknown and user-defined tokens are their own
 * text; byte tokens `<0xXX>` one byte; UNUSED and UNDEFINED nothing (as in llama.cpp); NORMAL
 * tokens are the one thing tokenizer kinds spell differently (`normalBytes`).
 */
export function vocabPieces(vocab: Vocab, normalBytes: (text: string) => Uint8Array): PieceSource {
  const encoder = new TextEncoder();
  const cache: ({ bytes: Uint8Array; special: boolean } | undefined)[] = new Array(vocab.tokens.length);
  return {
    piece(id) {
      const hit = cache[id];
      if (hit) return hit;
      if (!(id >= 0 && id < vocab.tokens.length)) throw new TokenizerError(`token id ${id} is out of range (vocabulary of ${vocab.tokens.length})`);
      const text = vocab.tokens[id];
      const type = vocab.types[id];
      const special = type === TokenType.CONTROL || type === TokenType.UNKNOWN;
      let bytes: Uint8Array = new Uint8Array(0);
      if (special || type === TokenType.USER_DEFINED) bytes = encoder.encode(text);
      else if (type === TokenType.NORMAL) bytes = normalBytes(text);
      else if (type === TokenType.BYTE) bytes = Uint8Array.of(parseInt(text.slice(3, 5), 16));
      return (cache[id] = { bytes, special });
    },
  };
}

export interface DetokenizeRules {
  /** Drop one leading space of the first piece (SentencePiece's space prefix). */
  stripFirstSpace: boolean;
  /** llama.cpp's clean_up_tokenization_spaces passes. */
  cleanSpaces: boolean;
}

// ignoreBOM: a leading U+FEFF is text like any other, not a byte-order mark to drop.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
const SPACE = 0x20;

export function detokenize(source: PieceSource, ids: readonly number[], rules: DetokenizeRules, opts: DecodeOptions = {}): string {
  const skipSpecial = opts.skipSpecial ?? true;
  const parts: Uint8Array[] = [];
  let total = 0;
  let stripSpace = rules.stripFirstSpace;
  for (const id of ids) {
    const { bytes, special } = source.piece(id);
    let piece: Uint8Array = skipSpecial && special ? EMPTY : bytes;
    if (stripSpace && piece.length > 0 && piece[0] === SPACE) piece = piece.subarray(1);
    stripSpace = false;
    parts.push(piece);
    total += piece.length;
  }
  let out: Uint8Array = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  if (rules.cleanSpaces) out = cleanSpaces(out);
  return utf8.decode(out);
}

const EMPTY = new Uint8Array(0);

// llama.cpp's three clean-up passes, on bytes: " ?", " !", " .", " ," lose the space; a lone
// " ' " loses both spaces; " 's", " 'm", " 're", " 've" lose the space.
function cleanSpaces(text: Uint8Array): Uint8Array {
  const Q = 0x3f, EX = 0x21, DOT = 0x2e, COMMA = 0x2c, APOS = 0x27;
  let t = Array.from(text);
  if (t.length === 0) return text;
  let out = [t[0]];
  for (let i = 1; i < t.length; i++) {
    const x = t[i];
    if (t[i - 1] === SPACE && (x === Q || x === EX || x === DOT || x === COMMA)) out.pop();
    out.push(x);
  }
  t = out;
  out = [t[0]];
  for (let i = 1; i < t.length; i++) {
    const x = t[i];
    if (x === APOS && i + 1 < t.length && t[i - 1] === SPACE && t[i + 1] === SPACE) {
      out.pop();
      out.push(x);
      t[++i] = 0; // the space after is dropped (llama.cpp overwrites it with NUL and skips it)
      continue;
    }
    out.push(x);
  }
  t = out;
  out = [t[0]];
  for (let i = 1; i < t.length; i++) {
    const x = t[i];
    if (t[i - 1] === SPACE && x === APOS && i + 1 < t.length) {
      const x1 = t[i + 1];
      const x2 = i + 2 < t.length ? t[i + 2] : -1;
      const s = 0x73, m = 0x6d, r = 0x72, v = 0x76, e = 0x65;
      if (x1 === s || x1 === m || (x2 !== -1 && (x1 === r || x1 === v) && x2 === e)) out.pop();
    }
    out.push(x);
  }
  return Uint8Array.from(out);
}

/** Bytes at the end of `buf` that begin a UTF-8 character still missing continuation bytes. */
function incompleteTail(buf: Uint8Array, len: number): number {
  for (let back = 1; back <= Math.min(3, len); back++) {
    const b = buf[len - back];
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = b >= 0xf0 && b < 0xf8 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

export function streamDecoder(source: PieceSource, opts: DecodeOptions = {}): StreamDecoder {
  const skipSpecial = opts.skipSpecial ?? true;
  let pending = new Uint8Array(0);
  return {
    push(id: number): string {
      const { bytes, special } = source.piece(id);
      if (skipSpecial && special) return "";
      const buf = new Uint8Array(pending.length + bytes.length);
      buf.set(pending);
      buf.set(bytes, pending.length);
      const hold = incompleteTail(buf, buf.length);
      pending = buf.slice(buf.length - hold);
      return utf8.decode(buf.subarray(0, buf.length - hold));
    },
    flush(): string {
      const text = utf8.decode(pending);
      pending = new Uint8Array(0);
      return text;
    },
  };
}
