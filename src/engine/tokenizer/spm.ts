// SentencePiece-style tokenizer (`tokenizer.ggml.model = llama`), as llama.cpp's llm_tokenizer_spm:
// spaces become ▁, a space is prefixed to text that starts the input or follows a special token,
// then adjacent symbols are merged greedily by the score of the token they form (best score
// first, leftmost on ties) and symbols that are no token fall back to <0xXX> byte tokens.

import { detokenize, streamDecoder, vocabPieces, type PieceSource } from "./detokenize.ts";
import { Heap } from "./heap.ts";
import { SPACE_MARK, marksBoundWords, wordsAtMarks } from "./marks.ts";
import { WordCache } from "./word-cache.ts";
import { partitionSpecial, specialTokens } from "./special.ts";
import { TokenizerError, type DecodeOptions, type EncodeOptions, type Tokenizer } from "./types.ts";
import { vocabIds, type Vocab } from "./vocab.ts";

interface Bigram { left: number; right: number; score: number; size: number }

const utf8 = new TextEncoder();

function byteToken(vocab: Vocab, byte: number): number {
  const hex = byte.toString(16).toUpperCase().padStart(2, "0");
  const id = vocab.textToId.get(`<0x${hex}>`) ?? vocab.textToId.get(String.fromCharCode(byte));
  if (id !== undefined) return id;
  // llama.cpp aborts here (std::out_of_range); a vocabulary without byte tokens gets <unk>.
  if (vocab.unkId !== null) return vocab.unkId;
  throw new TokenizerError(`vocabulary has no byte token for 0x${hex} and no unknown token`);
}

/** Tokenizes one run of plain text (already ▁-escaped). */
export function spmSegment(vocab: Vocab, text: string, out: number[]): void {
  // Symbols are code points: [start, length] in UTF-16 units, linked as a list.
  const starts = new Int32Array(text.length), lens = new Int32Array(text.length);
  let count = 0;
  for (let i = 0; i < text.length; count++) {
    const c = text.charCodeAt(i);
    const n = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length ? 2 : 1;
    starts[count] = i;
    lens[count] = n;
    i += n;
  }
  const prev = new Int32Array(count), next = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < count ? i + 1 : -1;
  }
  const queue = new Heap<Bigram>((a, b) => a.score > b.score || (a.score === b.score && a.left < b.left));

  const tryAdd = (left: number, right: number) => {
    if (left === -1 || right === -1) return;
    const piece = text.substr(starts[left], lens[left] + lens[right]);
    const id = vocab.textToId.get(piece);
    if (id === undefined) return;
    queue.push({ left, right, score: vocab.scores[id], size: piece.length });
  };
  for (let i = 1; i < count; i++) tryAdd(i - 1, i);

  for (let bigram = queue.pop(); bigram; bigram = queue.pop()) {
    const { left, right } = bigram;
    // Stale: one side was merged away or grew since this pair was queued.
    if (lens[left] === 0 || lens[right] === 0 || lens[left] + lens[right] !== bigram.size) continue;
    lens[left] += lens[right];
    lens[right] = 0;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    tryAdd(prev[left], left);
    tryAdd(left, next[left]);
  }

  // A merged symbol is a token by construction (only pairs forming a token are queued), so
  // only a lone code point can be missing from the vocabulary: it goes out as its bytes.
  if (count > 0) {
    for (let i = 0; i !== -1; i = next[i]) {
      const piece = text.substr(starts[i], lens[i]);
      const id = vocab.textToId.get(piece);
      if (id !== undefined) out.push(id);
      else for (const b of utf8.encode(piece)) out.push(byteToken(vocab, b));
    }
  }
}

export function spmPieces(vocab: Vocab): PieceSource {
  return vocabPieces(vocab, (text) => utf8.encode(text.replaceAll(SPACE_MARK, " ")));
}

export function createSpmTokenizer(vocab: Vocab): Tokenizer {
  const specials = specialTokens(vocab);
  // Word by word where the vocabulary makes that exact (see marks.ts), else the text whole.
  const words = marksBoundWords(vocab.tokens)
    ? new WordCache((word) => { const ids: number[] = []; spmSegment(vocab, word, ids); return ids; })
    : null;
  const merge = (text: string, out: number[]) => {
    if (!words) return spmSegment(vocab, text, out);
    for (const word of wordsAtMarks(text)) words.emit(word, out);
  };
  const pieces = spmPieces(vocab);
  const rules = { stripFirstSpace: vocab.addSpacePrefix, cleanSpaces: false };
  return {
    kind: "llama",
    ...vocabIds(vocab),
    encode(text: string, opts: EncodeOptions = {}): number[] {
      const out: number[] = [];
      const addBos = opts.addBos ?? vocab.addBos;
      if (addBos && vocab.bosId !== null) out.push(vocab.bosId);
      let prevSpecial = true; // the first text gets the space prefix, as text after a special token does
      for (const fragment of partitionSpecial(text, specials, opts.parseSpecial ?? false)) {
        if ("id" in fragment) { out.push(fragment.id); prevSpecial = true; continue; }
        const raw = vocab.addSpacePrefix && prevSpecial ? " " + fragment.text : fragment.text;
        merge(raw.replaceAll(" ", SPACE_MARK), out);
        prevSpecial = false;
      }
      if ((opts.addBos ?? true) && vocab.addEos && vocab.eosId !== null) out.push(vocab.eosId);
      return out;
    },
    decode: (ids: number[], opts?: DecodeOptions) => detokenize(pieces, ids, rules, opts),
    decoder: (opts?: DecodeOptions) => streamDecoder(pieces, opts),
    tokenText: (id: number) => vocab.tokens[id] ?? "",
  };
}
