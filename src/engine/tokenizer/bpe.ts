// Byte-level BPE (`tokenizer.ggml.model = gpt2`), as llama.cpp's llm_tokenizer_bpe: special tokens
// are cut out first, the rest is split into words by the pre-tokenizer that `tokenizer.ggml.pre`
// names, each word is spelled in GPT-2's byte alphabet and merged pair by pair in merge-rank order.

import { CHAR_TO_BYTE } from "./byte-unicode.ts";
import { detokenize, streamDecoder, vocabPieces, type PieceSource } from "./detokenize.ts";
import { Heap } from "./heap.ts";
import { IdBuffer } from "./id-buffer.ts";
import { WordTable } from "./word-table.ts";
import { emitByteLevelWords } from "./byte-words.ts";
import { llamaRegex, regexSplitter, splitGpt2, splitLlama3, splitQwen2, splitQwen35, wordRanges, type Splitter } from "./pretokenize.ts";
import { partitionSpecial, specialTokens } from "./special.ts";
import { TokenizerError, type DecodeOptions, type EncodeOptions, type Tokenizer } from "./types.ts";
import { LLAMA3_PRES, vocabIds, type Vocab } from "./vocab.ts";

interface PreTokenizer {
  splitters: Splitter[];
  /** llama.cpp's clean_spaces for this pre type (decode only). */
  cleanSpaces: boolean;
  /** A word that is itself a token is not merged (Llama 3). */
  ignoreMerges?: boolean;
}

// llama.cpp's regexes for pre types it runs through std::regex (llm_tokenizer_bpe's table).
const GPT2_RE = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const re = (...sources: string[]): Splitter[] => sources.map((src) => (src === GPT2_RE ? splitGpt2 : regexSplitter(llamaRegex(src), true)));
const SPLIT = {
  default: re("[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2_RE, "\\p{N}+", "[0-9][0-9][0-9]"),
  gpt2: [splitGpt2],
  digitsThenGpt2: re("\\p{N}", GPT2_RE),
  llama3: [splitLlama3],
  qwen2: [splitQwen2],
  qwen35: [splitQwen35],
  falcon: re("[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2_RE, "[0-9][0-9][0-9]"),
  bloom: re(" ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+"),
  viking: re(" ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+", "\\p{N}"),
  deepseekLlm: re("[\r\n]", "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+", "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+", "\\s+$", "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+", "\\p{N}+"),
  deepseekCoder: re("[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+", "\\p{N}"),
  deepseek3: re("\\p{N}{1,3}", "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+", "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
  tekken: re("[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
  gpt4o: re("[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
  seedCoder: re("(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
  bailing: re("'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"),
  minicpm5: re("\\p{N}{1,3}", "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
  ufakzeka: re("[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
};

// `tokenizer.ggml.pre` -> [splitters, clean_spaces, ignore_merges], after llama_vocab::load.
const PRE_TABLE: [names: string[], splitters: Splitter[], cleanSpaces: boolean, ignoreMerges?: boolean][] = [
  [["default"], SPLIT.default, true],
  [["gpt-2", "gpt2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "modern-bert",
    "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "exaone4"], SPLIT.gpt2, true],
  [["trillion", "granite-docling"], SPLIT.gpt2, false],
  [["smollm", "command-r"], SPLIT.digitsThenGpt2, false],
  [["starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"], SPLIT.digitsThenGpt2, true],
  [[...LLAMA3_PRES], SPLIT.llama3, true, true],
  [["dbrx", "smaug-bpe", "chatglm-bpe", "glm4"], SPLIT.llama3, true],
  [["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open", "grok-2"], SPLIT.qwen2, false],
  [["stablelm2", "megrez"], SPLIT.qwen2, true],
  [["qwen35"], SPLIT.qwen35, false],
  [["falcon"], SPLIT.falcon, true],
  [["bloom", "gpt3-finnish"], SPLIT.bloom, true],
  [["poro-chat"], SPLIT.bloom, false],
  [["viking"], SPLIT.viking, false],
  [["deepseek-llm"], SPLIT.deepseekLlm, false],
  [["deepseek-coder"], SPLIT.deepseekCoder, false],
  [["deepseek-v3"], SPLIT.deepseek3, false],
  [["tekken"], SPLIT.tekken, false, true],
  [["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"], SPLIT.gpt4o, false],
  [["seed-coder"], SPLIT.seedCoder, false],
  [["bailingmoe", "bailingmoe2", "llada-moe"], SPLIT.bailing, false],
  [["minicpm5"], SPLIT.minicpm5, true, true],
  [["ufakzeka"], SPLIT.ufakzeka, false],
];
const PRE_TOKENIZERS: Record<string, PreTokenizer> = Object.fromEntries(PRE_TABLE.flatMap(([names, splitters, cleanSpaces, ignoreMerges]) =>
  names.map((name) => [name, { splitters, cleanSpaces, ignoreMerges: ignoreMerges ?? false }])));

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
  /** One word's ids, from its text in GPT-2's byte alphabet. */
  const mergeWord = (word: string, ids: IdBuffer) => {
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
  };
  const table = new WordTable();

  const pieces: PieceSource = vocabPieces(vocab, byteLevelDecode);
  const rules = { stripFirstSpace: vocab.addSpacePrefix, cleanSpaces: pre.cleanSpaces };
  return {
    kind: "gpt2",
    ...vocabIds(vocab),
    encode(text: string, opts: EncodeOptions = {}): number[] {
      const out = new IdBuffer(Math.ceil(text.length / 3) + 8);
      if ((opts.addBos ?? vocab.addBos) && vocab.bosId !== null) out.push(vocab.bosId);
      for (const fragment of partitionSpecial(text, specials, opts.parseSpecial ?? false)) {
        if ("id" in fragment) { out.push(fragment.id); continue; }
        emitByteLevelWords(table, fragment.text, wordRanges(fragment.text, pre.splitters), out, mergeWord);
      }
      if ((opts.addBos ?? true) && vocab.addEos && vocab.eosId !== null) out.push(vocab.eosId);
      return out.toArray();
    },
    decode: (ids: number[], opts?: DecodeOptions) => detokenize(pieces, ids, rules, opts),
    decoder: (opts?: DecodeOptions) => streamDecoder(pieces, opts),
    tokenText: (id: number) => vocab.tokens[id] ?? "",
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
