// Byte-level BPE words (GPT-2's scheme: each word spelled in a 256-character alphabet standing
// for its UTF-8 bytes, then merged) looked up by their text as it is: only a word not seen
// before is spelled and merged, so repeated words cost a hash and a compare.

import { BYTE_TO_CHAR } from "./byte-unicode.ts";
import type { IdBuffer } from "./id-buffer.ts";
import { WORD_HASH_SEED, wordHash, type WordTable } from "./word-table.ts";

const utf8 = new TextEncoder();

/** `word` in GPT-2's byte alphabet. */
export function spellBytes(word: string): string {
  let out = "";
  for (const b of utf8.encode(word)) out += BYTE_TO_CHAR[b];
  return out;
}

/**
 * Appends the ids of each word of `text` (its [start, end) pairs in `ranges`, pretokenize.ts
 * wordRanges): from the table, else by `merge` of the spelled word, which the table then keeps.
 */
export function emitByteLevelWords(table: WordTable, text: string, ranges: Int32Array, out: IdBuffer, merge: (spelled: string, out: IdBuffer) => void): void {
  for (let w = 0; w < ranges.length; w += 2) {
    const start = ranges[w], end = ranges[w + 1];
    let h = WORD_HASH_SEED;
    for (let i = start; i < end; i++) h = wordHash(h, text.charCodeAt(i));
    if (table.emit(text, start, end, h, out)) continue;
    const from = out.length;
    merge(spellBytes(text.slice(start, end)), out);
    table.add(text, start, end, h, out.data, from, out.length);
  }
}
