// The vocabulary as xgrammar needs it: every token's stored text plus the rule that turns stored
// text into bytes (xgrammar's "vocab type"), and which ids may never appear in constrained text.

import type { Tokenizer } from "../tokenizer/index.ts";

/** xgrammar's decoding of stored token text: `▁`/`<0xAB>` pieces, GPT-2 byte-to-unicode, or as is. */
export type VocabType = "byte_fallback" | "byte_level" | "raw";

export interface GrammarVocab {
  /** Stored text by id; "" for tokens that must never be allowed (control, unknown, unused). */
  encoded: string[];
  vocabType: VocabType;
  /** Logit rows (may exceed the tokenizer's vocabulary: padding rows are never allowed). */
  nVocab: number;
  stopIds: number[];
  /** How many ids were excluded as special. */
  excluded: number;
}

// Keyed by Tokenizer.kind. A tokenizer.json ("hf-bpe") can be either family, depending on its
// decoder, which the Tokenizer contract does not expose: it is read from the vocabulary itself.
const VOCAB_TYPE_BY_KIND: Record<string, VocabType | ((tokenText: (id: number) => string, n: number) => VocabType)> = {
  llama: "byte_fallback",
  gpt2: "byte_level",
  "hf-bpe": inferVocabType,
};

/**
 * Byte-level vocabularies hold a one-character token for each of the 256 bytes, among them `Ġ`
 * (space) and `Ċ` (newline); SentencePiece-style ones mark spaces with `▁` and carry `<0x0A>`
 * byte tokens. Anything else is taken literally.
 */
function inferVocabType(tokenText: (id: number) => string, n: number): VocabType {
  let byteLevelMarks = 0;
  let spmMarks = 0;
  for (let id = 0; id < n; id++) {
    const t = tokenText(id);
    if (t === "Ġ" || t === "Ċ") byteLevelMarks++;
    if (t.startsWith("▁") || /^<0x[0-9A-Fa-f]{2}>$/.test(t)) spmMarks++;
  }
  if (byteLevelMarks === 2) return "byte_level";
  return spmMarks > 0 ? "byte_fallback" : "raw";
}

export function buildGrammarVocab(tokenizer: Tokenizer, nVocab: number): GrammarVocab {
  const n = tokenizer.vocabSize;
  if (!Number.isInteger(nVocab) || nVocab < n) {
    throw new Error(`grammar vocabulary: nVocab ${nVocab} is smaller than the tokenizer's ${n} tokens`);
  }
  const rule = VOCAB_TYPE_BY_KIND[tokenizer.kind];
  if (rule === undefined) {
    throw new Error(`grammar vocabulary: no rule for tokenizer kind '${tokenizer.kind}' (known: ${Object.keys(VOCAB_TYPE_BY_KIND).join(", ")})`);
  }
  const vocabType = typeof rule === "function" ? rule((id) => tokenizer.tokenText(id), n) : rule;

  // A token is usable in constrained text if it renders as something. It is rendered after an
  // ordinary token, because SentencePiece drops the leading space of the first piece (a lone `▁`
  // would look empty). Control and unknown tokens render as nothing with skipSpecial, and so do
  // unused slots.
  const anchor = tokenizer.encode("a", { addBos: false })[0];
  const base = anchor === undefined ? "" : tokenizer.decode([anchor]);
  const prefix = anchor === undefined ? [] : [anchor];
  const stop = new Set(tokenizer.stopIds);
  const encoded = new Array<string>(n);
  let excluded = 0;
  for (let id = 0; id < n; id++) {
    const renders = tokenizer.decode([...prefix, id]).length > base.length;
    if (renders && !stop.has(id)) {
      encoded[id] = tokenizer.tokenText(id);
    } else {
      encoded[id] = "";
      excluded++;
    }
  }
  return { encoded, vocabType, nVocab, stopIds: [...stop].sort((a, b) => a - b), excluded };
}
