// Byte-level BPE (`tokenizer.ggml.model = gpt2`), as llama.cpp's llm_tokenizer_bpe: special tokens
// are cut out first, the rest is split into words by the pre-tokenizer that `tokenizer.ggml.pre`
// names, each word is spelled in GPT-2's byte alphabet and merged pair by pair in merge-rank order.

import { BYTE_TO_CHAR, CHAR_TO_BYTE } from "./byte-unicode.ts";
import { detokenize, streamDecoder, type PieceSource } from "./detokenize.ts";
import { Heap } from "./heap.ts";
import { codePointsToString, preTokenize, regexSplitter, splitGpt2, splitLlama3, splitQwen2, type Splitter } from "./pretokenize.ts";
import { partitionSpecial, specialTokens } from "./special.ts";
import { TokenType, TokenizerError, type DecodeOptions, type EncodeOptions, type Tokenizer } from "./types.ts";
import { LLAMA3_PRES, type Vocab } from "./vocab.ts";

interface PreTokenizer {
  splitters: Splitter[];
  /** llama.cpp's clean_spaces for this pre type (decode only). */
  cleanSpaces: boolean;
  /** A word that is itself a token is not merged (Llama 3). */
  ignoreMerges?: boolean;
}

const digitsEach = regexSplitter(/\p{N}/u);
const llama3: PreTokenizer = { splitters: [splitLlama3], cleanSpaces: true, ignoreMerges: true };
const gpt2: PreTokenizer = { splitters: [splitGpt2], cleanSpaces: true };

// `tokenizer.ggml.pre` -> pre-tokenizer, after llama.cpp's llama_vocab::load and llm_tokenizer_bpe.
const PRE_TOKENIZERS: Record<string, PreTokenizer> = {
  default: {
    splitters: [regexSplitter(/[\p{P}$+<=>^~|]+/u), splitGpt2, regexSplitter(/\p{N}+/u), regexSplitter(/[0-9][0-9][0-9]/u)],
    cleanSpaces: true,
  },
  "gpt-2": gpt2, gpt2, mpt: gpt2, olmo: gpt2, jais: gpt2,
  smollm: { splitters: [digitsEach, splitGpt2], cleanSpaces: false },
  starcoder: { splitters: [digitsEach, splitGpt2], cleanSpaces: true },
  refact: { splitters: [digitsEach, splitGpt2], cleanSpaces: true },
  qwen2: { splitters: [splitQwen2], cleanSpaces: false },
  "deepseek-r1-qwen": { splitters: [splitQwen2], cleanSpaces: false },
  stablelm2: { splitters: [splitQwen2], cleanSpaces: true },
  ...Object.fromEntries([...LLAMA3_PRES].map((name) => [name, llama3])),
  dbrx: { ...llama3, ignoreMerges: false },
  "smaug-bpe": { ...llama3, ignoreMerges: false },
};

const utf8 = new TextEncoder();
const SEP = "\u0000";

interface Bigram { left: number; right: number; text: string; rank: number }

export function createBpeTokenizer(vocab: Vocab): Tokenizer {
  const pre = PRE_TOKENIZERS[vocab.pre];
  if (!pre) throw new TokenizerError(`unsupported pre-tokenizer '${vocab.pre}' (supported: ${Object.keys(PRE_TOKENIZERS).join(", ")})`);
  const ranks = new Map<string, number>();
  const merges = vocab.merges;
  if (!merges) throw new TokenizerError("byte-level BPE vocabulary without tokenizer.ggml.merges");
  merges.forEach((m, i) => {
    const at = m.indexOf(" ", 1);
    const key = at < 0 ? SEP : m.slice(0, at) + SEP + m.slice(at + 1);
    if (!ranks.has(key)) ranks.set(key, i);
  });
  const specials = specialTokens(vocab);
  const wordCache = new Map<string, number[]>();

  const mergeWord = (word: string, out: number[]) => {
    const cached = wordCache.get(word);
    if (cached) { for (const id of cached) out.push(id); return; }
    const ids: number[] = [];
    const whole = pre.ignoreMerges ? vocab.textToId.get(word) : undefined;
    if (whole !== undefined) ids.push(whole);
    else {
      const sym = Array.from(word); // text of each live symbol; "" once merged away
      const prev = sym.map((_, i) => i - 1);
      const next = sym.map((_, i) => (i + 1 < sym.length ? i + 1 : -1));
      const queue = new Heap<Bigram>((a, b) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left));
      const add = (left: number, right: number) => {
        if (left === -1 || right === -1) return;
        const rank = ranks.get(sym[left] + SEP + sym[right]);
        if (rank !== undefined) queue.push({ left, right, text: sym[left] + sym[right], rank });
      };
      for (let i = 1; i < sym.length; i++) add(i - 1, i);
      for (let b = queue.pop(); b; b = queue.pop()) {
        if (sym[b.left] === "" || sym[b.right] === "" || sym[b.left] + sym[b.right] !== b.text) continue;
        sym[b.left] = b.text;
        sym[b.right] = "";
        next[b.left] = next[b.right];
        if (next[b.right] >= 0) prev[next[b.right]] = b.left;
        add(prev[b.left], b.left);
        add(b.left, next[b.left]);
      }
      for (let i = 0; i !== -1 && i < sym.length; i = next[i]) {
        const id = vocab.textToId.get(sym[i]);
        if (id !== undefined) { ids.push(id); continue; }
        // No such token: llama.cpp looks each byte of the symbol up as a one-byte token.
        for (const byte of utf8.encode(sym[i])) {
          const single = byte < 0x80 ? vocab.textToId.get(String.fromCharCode(byte)) : undefined;
          if (single !== undefined) ids.push(single);
        }
      }
    }
    if (wordCache.size > 50_000) wordCache.clear();
    wordCache.set(word, ids);
    for (const id of ids) out.push(id);
  };

  const pieces: PieceSource = bpePieces(vocab);
  const rules = { stripFirstSpace: vocab.addSpacePrefix, cleanSpaces: pre.cleanSpaces };
  return {
    kind: "gpt2",
    vocabSize: vocab.tokens.length,
    bosId: vocab.bosId,
    eosId: vocab.eosId,
    stopIds: vocab.eogIds,
    encode(text: string, opts: EncodeOptions = {}): number[] {
      const out: number[] = [];
      if ((opts.addBos ?? vocab.addBos) && vocab.bosId !== null) out.push(vocab.bosId);
      for (const fragment of partitionSpecial(text, specials, opts.parseSpecial ?? false)) {
        if ("id" in fragment) { out.push(fragment.id); continue; }
        for (const cps of preTokenize(fragment.text, pre.splitters)) {
          let word = "";
          for (const b of utf8.encode(codePointsToString(cps))) word += BYTE_TO_CHAR[b];
          mergeWord(word, out);
        }
      }
      if ((opts.addBos ?? true) && vocab.addEos && vocab.eosId !== null) out.push(vocab.eosId);
      return out;
    },
    decode: (ids: number[], opts?: DecodeOptions) => detokenize(pieces, ids, rules, opts),
    decoder: (opts?: DecodeOptions) => streamDecoder(pieces, opts),
    tokenText: (id: number) => vocab.tokens[id] ?? "",
  };
}

function bpePieces(vocab: Vocab): PieceSource {
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
      if (special || type === TokenType.USER_DEFINED) bytes = utf8.encode(text);
      else if (type === TokenType.NORMAL) bytes = byteLevelDecode(text);
      else if (type === TokenType.BYTE) bytes = Uint8Array.of(parseInt(text.slice(3, 5), 16));
      return (cache[id] = { bytes, special });
    },
  };
}

/** GPT-2 alphabet back to bytes; a character outside it is written as llama.cpp does. */
function byteLevelDecode(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b !== undefined) { out.push(b); continue; }
    const hex = Array.from(utf8.encode(ch), (x) => x.toString(16).padStart(2, "0")).join("");
    for (const x of utf8.encode(`[UNK_BYTE_0x${hex}${text}]`)) out.push(x);
  }
  return Uint8Array.from(out);
}
