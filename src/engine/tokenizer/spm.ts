// SentencePiece-style tokenizer (`tokenizer.ggml.model = llama`), as llama.cpp's llm_tokenizer_spm:
// spaces become ▁, a space is prefixed to text that starts the input or follows a special token,
// then adjacent symbols are merged greedily by the score of the token they form (best score
// first, leftmost on ties) and symbols that are no token fall back to <0xXX> byte tokens.

import { detokenize, streamDecoder, vocabPieces, type PieceSource } from "./detokenize.ts";
import { Heap } from "./heap.ts";
import { partitionSpecial, specialTokens } from "./special.ts";
import { TokenizerError, type DecodeOptions, type EncodeOptions, type Tokenizer } from "./types.ts";
import { vocabIds, type Vocab } from "./vocab.ts";

interface Bigram { left: number; right: number; score: number; size: number }

const SPACE_MARK = "\u2581";
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
function spmSegment(vocab: Vocab, text: string, out: number[]): void {
  // Symbols are code points: [start, length] in UTF-16 units, linked as a list.
  const starts: number[] = [], lens: number[] = [];
  for (let i = 0; i < text.length;) {
    const c = text.charCodeAt(i);
    const n = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length ? 2 : 1;
    starts.push(i); lens.push(n);
    i += n;
  }
  const count = starts.length;
  const prev = Array.from({ length: count }, (_, i) => i - 1);
  const next = Array.from({ length: count }, (_, i) => (i + 1 < count ? i + 1 : -1));
  const queue = new Heap<Bigram>((a, b) => a.score > b.score || (a.score === b.score && a.left < b.left));
  const revMerge = new Map<string, [number, number]>();

  const tryAdd = (left: number, right: number) => {
    if (left === -1 || right === -1) return;
    const piece = text.substr(starts[left], lens[left] + lens[right]);
    const id = vocab.textToId.get(piece);
    if (id === undefined) return;
    queue.push({ left, right, score: vocab.scores[id], size: piece.length });
    revMerge.set(piece, [left, right]);
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

  const resegment = (sym: number) => {
    const piece = text.substr(starts[sym], lens[sym]);
    const id = vocab.textToId.get(piece);
    if (id !== undefined) { out.push(id); return; }
    const merge = revMerge.get(piece);
    if (merge) { resegment(merge[0]); resegment(merge[1]); return; }
    for (const b of utf8.encode(piece)) out.push(byteToken(vocab, b));
  };
  if (count > 0) for (let i = 0; i !== -1; i = next[i]) resegment(i);
}

export function spmPieces(vocab: Vocab): PieceSource {
  return vocabPieces(vocab, (text) => utf8.encode(text.replaceAll(SPACE_MARK, " ")));
}

export function createSpmTokenizer(vocab: Vocab): Tokenizer {
  const specials = specialTokens(vocab);
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
        spmSegment(vocab, raw.replaceAll(" ", SPACE_MARK), out);
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
