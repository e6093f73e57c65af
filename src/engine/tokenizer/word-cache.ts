// The ids of words merged before: natural text repeats its words, and a merge is the costly part
// of tokenizing. Bounded: past MAX_ENTRIES the cache starts over, and long words (a run of spaces,
// a blob) are not kept, as they seldom repeat.

const MAX_ENTRIES = 50_000;
export const MAX_CACHED_WORD = 256;

export class WordCache {
  private readonly ids = new Map<string, number[]>();

  constructor(private readonly merge: (word: string) => number[]) {}

  /** Appends the ids of `word` to `out`, merging it only the first time. */
  emit(word: string, out: { push(id: number): void }): void {
    let ids = this.ids.get(word);
    if (!ids) {
      ids = this.merge(word);
      if (word.length <= MAX_CACHED_WORD) {
        if (this.ids.size >= MAX_ENTRIES) this.ids.clear();
        this.ids.set(word, ids);
      }
    }
    for (const id of ids) out.push(id);
  }
}
