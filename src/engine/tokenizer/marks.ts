// SentencePiece's space mark, ▁, and the words it bounds. Tokens of SentencePiece-style
// vocabularies begin with ▁ (or are runs of it) but never hold one after another character, so
// no merge can join the symbols on both sides of a ▁ that follows a non-▁: a text cut into words
// there merges to the same ids word by word as whole, and each word's merge is small and cacheable
// (one merge over a megabyte-long text is a heap over a million symbols).

export const SPACE_MARK = "\u2581";
const MARK = 0x2581;

/** Whether no token holds ▁ after another character, so cutting at wordsAtMarks is exact. */
export function marksBoundWords(tokens: Iterable<string>): boolean {
  for (const t of tokens) if (/[^\u2581]\u2581/u.test(t)) return false;
  return true;
}

/** The words of `text`, each starting at a ▁ that follows a non-▁ (the first wherever the text starts). */
export function* wordsAtMarks(text: string): Generator<string> {
  let start = 0;
  for (let i = 1; i < text.length; i++) {
    if (text.charCodeAt(i) === MARK && text.charCodeAt(i - 1) !== MARK) {
      yield text.slice(start, i);
      start = i;
    }
  }
  if (start < text.length) yield text.slice(start);
}
