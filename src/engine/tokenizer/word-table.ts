// The ids of words merged before, keyed by the word's UTF-16 units where it lies in the text:
// natural text repeats its words, and a merge is the costly part of tokenizing. The caller hashes
// each word as it scans for its end, so a lookup makes no string (slicing millions of words and
// hashing them in a Map cost more than the rest of tokenizing story text). Open addressing over
// entry numbers; keys and ids live in two pools; all of it grows with use. Bounded: past
// MAX_ENTRIES words, or full pools, it starts over.

import type { IdBuffer } from "./id-buffer.ts";

/**
 * Words kept before starting over. A bigger table keeps more of a text of few repeats, but its
 * misses then cost more than the merges they would save (measured: 2^19 entries tokenized 10 MB
 * of random vocabulary words 1.6x slower than 2^16).
 */
const MAX_ENTRIES = 1 << 16;
/** Longer words (a run of spaces, a blob) are not kept: they seldom repeat. */
export const MAX_TABLE_WORD = 256;
/** What the two pools may hold before it starts over (4 and 8 MB). */
const MAX_KEY_UNITS = 1 << 21;
const MAX_IDS = 1 << 21;
const FIRST_ENTRIES = 1 << 12;
const ENTRY = 8;
/** An entry's fields: offsets into its ENTRY words of `meta` (the other three are padding). */
const HASH = 0, KEY_AT = 1, KEY_LEN = 2, IDS_AT = 3, IDS_LEN = 4;

/** The running hash of a word's units: `h = wordHash(h, unit)` from WORD_HASH_SEED. */
export const WORD_HASH_SEED = 0x811c9dc5 | 0;
export const wordHash = (h: number, unit: number) => Math.imul(h ^ unit, 0x01000193);

export class WordTable {
  /**
   * Per slot [entry number + 1 (0: empty), the entry's hash]: a probe reads one place until the
   * hash matches. Twice as many slots as entries can be.
   */
  private slots = new Int32Array(2 * 2 * FIRST_ENTRIES);
  private mask = 2 * FIRST_ENTRIES - 1;
  /** Per entry [hash, key start, key length, ids start, ids length, unused x3]: one cache line. */
  private meta = new Int32Array(ENTRY * FIRST_ENTRIES);
  private keys = new Uint16Array(1 << 16);
  private ids = new Int32Array(1 << 16);
  private entries = 0;
  private keysUsed = 0;
  private idsUsed = 0;

  /** Appends the ids of text[start, end) (hash h) to out and returns true, or returns false if it is not here. */
  emit(text: string, start: number, end: number, h: number, out: IdBuffer): boolean {
    const len = end - start;
    const { slots, meta, keys } = this;
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const e = slots[2 * slot] - 1;
      if (e < 0) return false;
      const m = ENTRY * e;
      if (slots[2 * slot + 1] !== h || meta[m + KEY_LEN] !== len) continue;
      const at = meta[m + KEY_AT];
      let k = 0;
      while (k < len && keys[at + k] === text.charCodeAt(start + k)) k++;
      if (k < len) continue;
      out.append(this.ids, meta[m + IDS_AT], meta[m + IDS_AT] + meta[m + IDS_LEN]);
      return true;
    }
  }

  /** Keeps the ids of text[start, end) (hash h): src[from, to). */
  add(text: string, start: number, end: number, h: number, src: Int32Array, from: number, to: number): void {
    const len = end - start, n = to - from;
    if (len > MAX_TABLE_WORD) return;
    if (this.entries === MAX_ENTRIES || this.keysUsed + len > MAX_KEY_UNITS || this.idsUsed + n > MAX_IDS) this.clear();
    if (ENTRY * this.entries === this.meta.length) this.growEntries();
    if (this.keysUsed + len > this.keys.length) this.keys = grown(this.keys, this.keysUsed + len);
    if (this.idsUsed + n > this.ids.length) this.ids = grown(this.ids, this.idsUsed + n);
    const e = this.entries++, m = ENTRY * e;
    this.meta[m + HASH] = h;
    this.meta[m + KEY_AT] = this.keysUsed;
    this.meta[m + KEY_LEN] = len;
    for (let k = 0; k < len; k++) this.keys[this.keysUsed++] = text.charCodeAt(start + k);
    this.meta[m + IDS_AT] = this.idsUsed;
    this.meta[m + IDS_LEN] = n;
    for (let i = from; i < to; i++) this.ids[this.idsUsed++] = src[i];
    this.place(e);
  }

  private place(e: number): void {
    const h = this.meta[ENTRY * e + HASH];
    let slot = h & this.mask;
    while (this.slots[2 * slot] !== 0) slot = (slot + 1) & this.mask;
    this.slots[2 * slot] = e + 1;
    this.slots[2 * slot + 1] = h;
  }

  private growEntries(): void {
    const cap = 2 * (this.meta.length / ENTRY);
    this.meta = grown(this.meta, ENTRY * cap);
    this.slots = new Int32Array(2 * 2 * cap);
    this.mask = 2 * cap - 1;
    for (let e = 0; e < this.entries; e++) this.place(e);
  }

  private clear(): void {
    this.slots.fill(0);
    this.entries = this.keysUsed = this.idsUsed = 0;
  }
}

function grown<T extends Uint16Array | Int32Array>(a: T, need: number): T {
  const next = new (a.constructor as new (n: number) => T)(Math.max(2 * a.length, need));
  next.set(a);
  return next;
}
