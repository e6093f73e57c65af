// Records the reference tokenizations the tokenizer tests compare against, so CI needs neither
// llama.cpp nor Python:
//
//   test/fixtures/tokenizer/stories15M.json      llama.cpp on ../shared/models/stories15M (SentencePiece)
//   test/fixtures/tokenizer/bpe-<pre>.json       llama.cpp on a byte-level BPE vocabulary built here
//                                                (merges trained deterministically on TRAINING_TEXT),
//                                                one vocab-only GGUF per `tokenizer.ggml.pre`
//   test/fixtures/tokenizer/tinystories-hf.json  Hugging Face `tokenizers` on ../shared/models/tinystories-656k
//   test/fixtures/tokenizer/tinystories-gguf.json llama.cpp on that directory's vocabulary converted
//                                                with hfTokenizerToGGUF
//
// Run: bun scripts/record-tokenizer-fixtures.ts
// llama.cpp comes from node-llama-cpp (a dev dependency). The Hugging Face reference needs the
// Python `tokenizers` package: set VALAR_PY_TOKENIZERS to a directory to add to PYTHONPATH
// (e.g. `pip install --no-deps --target /tmp/pyhf tokenizers`); without it that fixture is kept.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { getLlama } from "node-llama-cpp";
import { gguf, writeGGUF, type GGUFMetadataInput } from "../src/engine/model/gguf-writer.ts";
import { BYTE_TO_CHAR } from "../src/engine/tokenizer/byte-unicode.ts";
import { hfTokenizerToGGUF } from "../src/engine/tokenizer/hf-to-gguf.ts";
import { preTokenize, splitLlama3 } from "../src/engine/tokenizer/pretokenize.ts";
import { TokenType } from "../src/engine/tokenizer/types.ts";

const ROOT = resolve(import.meta.dir, "..");
const MODELS = resolve(ROOT, "../shared/models");
const OUT = join(ROOT, "test/fixtures/tokenizer");

/** Texts every tokenizer is checked on. */
const CORPUS: string[] = [
  "", " ", "  ", "   ", "a", " a", "\n", "\n\n\n", "\t", " \t \n ",
  "Hello world", " Hello world", "Hello world ", "  leading and trailing  ", "multiple     spaces   inside",
  "line one\nline two\r\nline three\n\n  indented line",
  "\ttab\tseparated\t\tcolumns\t",
  "digits 0 1 12 123 1234 12345 123456789 and 3.14159, 1,000,000 or 2024-06-01",
  "a long number 12345678901234567890 then 007",
  "Hello, world! How's it going? I'm fine; you're great. We'll see - they'd've known.",
  "DON'T Can't won't I'M YOU'RE it'S",
  "Punctuation!!! ??? ... --- ((())) [[x]] {{y}} <tag> a/b\\c @#$%^&*_+=|~`",
  "café naïve résumé Ångström façade coöperate",
  "combining marks: e\u0301 a\u0308 n\u0303 ọ\u0302",
  "日本語のテキストと中文字符，还有标点。",
  "emoji 🙂🎉👍🏽 and a family 👨‍👩‍👧 plus flags 🇫🇷",
  "Ελληνικά и русский текст, עברית, العربية",
  "\u00a0non-breaking\u2003em space\u3000ideographic space",
  "zero\u200bwidth and soft\u00adhyphen",
  "\ufeffbyte-order mark first, \ufeff and inside",
  "wide spaces: a \u3000b\t\u3000\u3000c 日本\u3000語 !\u3000? x \u3000\n1 \u3000 2 \u2028\n3 \u2028 4",
  "special <|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n",
  "<s>bos then </s> and <unk> inline",
  "<|endoftext|>", "text<|endoftext|>more", "<tool_call>{\"name\": \"f\"}</tool_call>",
  "<|start_story|>Once upon a time<|end_story|>",
  "function add(a, b) {\n    return a + b; // sum\n}\n",
  "Mixed CASE, snake_case, camelCase and SCREAMING_CASE",
  "URL https://example.com/path?q=1&r=2#frag and mail me@example.org",
  "Once upon a time, there was a little girl named Lily. She loved to play outside.",
  "One day, Tom saw a big red ball in the park. \"Can I play?\" he asked. Mom said, \"Yes!\"",
  "x".repeat(40) + " " + "ab".repeat(20),
];

/** Pieces random test texts are made of: the characters and boundaries tokenizers get wrong. */
const RANDOM_ATOMS = [
  "a", "b", "Z", "É", "Once", " upon", "the", "Lily", " ", "  ", "   ", "\n", "\r\n", "\r", "\t", "é", "日", "本", "🙂", "👍🏽",
  "1", "23", "4567", "'s", "'S", "'ll", "'", "'re", ".", ",", "!?", "-", "_", "$", "+", "<", "|", "~", "^", "`",
  "<|im_end|>", "<tool_call>", "<s>", "</s>", "<|start_story|>", "<|", "|>", "▁", "<0x41>",
  "\u00a0", "\u3000", "\u0301", "\u200b", "\u0085", "\u2028", "\f", "\v", "ǅ", "Ⅻ", "½", "٣", "¹",
];

/** Deterministic random texts (a linear congruential generator, so every run writes the same). */
function randomTexts(seed: number, count: number, atoms: readonly string[] = RANDOM_ATOMS): string[] {
  let state = seed;
  const rand = () => ((state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  return Array.from({ length: count }, () =>
    Array.from({ length: 1 + Math.floor(rand() * 10) }, () => atoms[Math.floor(rand() * atoms.length)]).join(""));
}

const TEXTS = [...CORPUS, ...randomTexts(2026, 150)];
/** A shorter list for the compactly recorded pre-tokenizers. */
const SHORT_TEXTS = TEXTS.slice(0, CORPUS.length + 50);

/** Text the byte-level BPE merges are trained on. */
const TRAINING_TEXT = `
Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine.
One day, she saw a big, red ball in the park. "Can I play with the ball?" she asked her mom.
Her mom said, "Yes, you can play with the ball, but be careful!" Lily was very happy.
The little dog ran to the tree and barked. The cat didn't like the dog; it's always loud.
We'll go to the store and buy 12 apples, 3 bananas and 100 grams of cheese for 4.50 dollars.
In 2024 the numbers 1234567 and 987654321 were written down. Call 555-0123 today!
function main() { return value + 1; } // the code is simple; if (x == 0) print("zero");
Café au lait, naïve résumé, déjà vu. Straße und Größe. Ελληνικά. русский язык.
日本語のテキスト。中文字符和标点。你好，世界！今日は良い天気です。
Emoji: 🙂 🎉 👍 — quotes “like this” and ‘that’. Tabs\tand\tnewlines\n\n  indented text.
I'm sure you're right, they've said it's theirs and we'd agree. THE END.
`.repeat(3);

const N_MERGES = 400;
const SPECIALS: [text: string, type: TokenType][] = [
  ["<|endoftext|>", TokenType.CONTROL], ["<|im_start|>", TokenType.CONTROL], ["<|im_end|>", TokenType.CONTROL],
  ["<|begin_of_text|>", TokenType.CONTROL], ["<|eot_id|>", TokenType.CONTROL], ["<tool_call>", TokenType.USER_DEFINED],
];
const BPE_PRES = ["default", "gpt-2", "smollm", "qwen2", "llama-bpe"];
/** Further pre-tokenizers, recorded compactly (ids and plain decode) in bpe-more-pres.json. */
const MORE_PRES = ["starcoder", "command-r", "stablelm2", "qwen35", "chatglm-bpe", "dbrx", "falcon", "bloom", "poro-chat", "viking",
  "deepseek-llm", "deepseek-coder", "deepseek-v3", "tekken", "gpt-4o", "seed-coder", "bailingmoe", "minicpm5", "ufakzeka", "grok-2", "trillion"];

/** Classic BPE training over the GPT-2 byte alphabet; ties go to the lexicographically smallest pair. */
function trainBpe(text: string, nMerges: number): { tokens: string[]; merges: string[] } {
  const utf8 = new TextEncoder();
  const counts = new Map<string, number>();
  for (const cps of preTokenize(text, [splitLlama3])) {
    const word = Array.from(utf8.encode(String.fromCodePoint(...cps)), (b) => BYTE_TO_CHAR[b]).join("\u0001");
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  let words = [...counts].map(([w, c]) => ({ syms: w.split("\u0001"), count: c }));
  const tokens = BYTE_TO_CHAR.slice();
  const merges: string[] = [];
  for (let m = 0; m < nMerges; m++) {
    const pairs = new Map<string, number>();
    for (const { syms, count } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const key = syms[i] + " " + syms[i + 1];
        pairs.set(key, (pairs.get(key) ?? 0) + count);
      }
    }
    let best: string | null = null, bestCount = 1;
    for (const [key, c] of pairs) if (c > bestCount || (c === bestCount && best !== null && key < best)) { best = key; bestCount = c; }
    if (best === null) break;
    const [a, b] = best.split(" ");
    merges.push(best);
    tokens.push(a + b);
    words = words.map(({ syms, count }) => {
      const out: string[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) { out.push(a + b); i++; } else out.push(syms[i]);
      }
      return { syms: out, count };
    });
  }
  return { tokens, merges };
}

/** Minimal llama hyperparameters so llama.cpp accepts a vocab-only file. */
const VOCAB_ONLY_HPARAMS: Record<string, GGUFMetadataInput> = {
  "general.architecture": "llama",
  "general.name": "valar tokenizer fixture",
  "llama.context_length": gguf.u32(256),
  "llama.embedding_length": gguf.u32(64),
  "llama.block_count": gguf.u32(1),
  "llama.feed_forward_length": gguf.u32(128),
  "llama.attention.head_count": gguf.u32(1),
  "llama.attention.head_count_kv": gguf.u32(1),
  "llama.rope.dimension_count": gguf.u32(64),
  "llama.attention.layer_norm_rms_epsilon": gguf.f32(1e-5),
};

const llama = await getLlama({ gpu: false, logLevel: "error" as never });

interface LlamaCase { text: string; ids: number[]; idsSpecial: number[]; decoded: string; decodedSpecial: string; decodedWithBos?: string }

async function recordLlama(modelPath: string, texts: string[], bosId: number | null): Promise<LlamaCase[]> {
  const model = await llama.loadModel({ modelPath, vocabOnly: true });
  const cases = texts.map((text) => {
    const ids = Array.from(model.tokenize(text, false)) as number[];
    const idsSpecial = Array.from(model.tokenize(text, true)) as number[];
    const c: LlamaCase = {
      text, ids, idsSpecial,
      decoded: model.detokenize(ids as never, false),
      decodedSpecial: model.detokenize(idsSpecial as never, true),
    };
    if (bosId !== null) c.decodedWithBos = model.detokenize([bosId, ...ids] as never, false);
    return c;
  });
  await model.dispose();
  return cases;
}

/** JSON with one line per case (and per metadata key), so diffs of re-recordings stay readable. */
function save(name: string, data: Record<string, unknown>): void {
  mkdirSync(OUT, { recursive: true });
  const lines = Object.entries(data).map(([key, value]) => {
    const body = Array.isArray(value) ? `[\n${value.map((v) => JSON.stringify(v)).join(",\n")}\n]`
      : typeof value === "object" && value !== null ? `{\n${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(",\n")}\n}`
      : JSON.stringify(value);
    return `${JSON.stringify(key)}: ${body}`;
  });
  writeFileSync(join(OUT, name), `{\n${lines.join(",\n")}\n}\n`);
  console.log(`wrote test/fixtures/tokenizer/${name}`);
}

/** Hugging Face `tokenizers` (Python) on a tokenizer.json file, or null when it is not available. */
function recordHf(tokenizerJsonPath: string, texts: string[]): unknown[] | null {
  if (!process.env.VALAR_PY_TOKENIZERS) return null;
  const py = `
import json, sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1])
out = []
for text in json.load(sys.stdin):
    ids = t.encode(text).ids
    plain = t.encode(text, add_special_tokens=False).ids
    out.append({"text": text, "ids": ids, "idsNoBos": plain,
                "decoded": t.decode(ids, skip_special_tokens=True), "decodedSpecial": t.decode(ids, skip_special_tokens=False)})
print(json.dumps(out))`;
  const proc = Bun.spawnSync(["python3", "-c", py, tokenizerJsonPath], {
    stdin: new TextEncoder().encode(JSON.stringify(texts)),
    env: { ...process.env, PYTHONPATH: process.env.VALAR_PY_TOKENIZERS },
  });
  if (proc.exitCode !== 0) throw new Error(`python tokenizers failed: ${proc.stderr.toString()}`);
  return JSON.parse(proc.stdout.toString());
}

const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
const split = (regex: string) => ({ type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false });

/** tokenizer.json files in the shape SmolLM2, Qwen2.5 and Llama 3 ship, around the trained vocabulary. */
function byteLevelTokenizerJson(style: "smollm" | "qwen2" | "llama3", tokens: string[], types: TokenType[], merges: string[], bos: number): string {
  const added = tokens.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: types[id] === TokenType.CONTROL }))
    .filter((t) => types[t.id] !== TokenType.NORMAL);
  const pre = {
    smollm: { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true }, byteLevel] },
    qwen2: { type: "Sequence", pretokenizers: [split(QWEN2_REGEX), { ...byteLevel, use_regex: false }] },
    llama3: { type: "Sequence", pretokenizers: [split(LLAMA3_REGEX), { ...byteLevel, use_regex: false }] },
  }[style];
  const bosText = tokens[bos];
  const template = {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: bosText, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    pair: [{ SpecialToken: { id: bosText, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: bosText, type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
    special_tokens: { [bosText]: { id: bosText, ids: [bos], tokens: [bosText] } },
  };
  return JSON.stringify({
    version: "1.0", truncation: null, padding: null, added_tokens: added,
    normalizer: style === "qwen2" ? { type: "NFC" } : null,
    pre_tokenizer: pre,
    post_processor: style === "llama3" ? { type: "Sequence", processors: [{ ...byteLevel, trim_offsets: false }, template] } : { ...byteLevel, trim_offsets: false },
    decoder: { ...byteLevel },
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false,
      byte_fallback: false, ignore_merges: style === "llama3",
      vocab: Object.fromEntries(tokens.map((t, i) => [t, i]).filter(([, i]) => types[i as number] === TokenType.NORMAL)),
      merges: merges.map((m) => m.split(" ")),
    },
  });
}

/** Added tokens with each flag (ids after the vocabulary's own). */
function withFlaggedTokens(json: string): string {
  const spec = JSON.parse(json);
  let id = Math.max(...Object.values(spec.model.vocab as Record<string, number>), ...spec.added_tokens.map((t: { id: number }) => t.id)) + 1;
  const flagged: [string, { lstrip: boolean; rstrip: boolean; single_word: boolean; special: boolean }][] = [
    ["<mask>", { lstrip: true, rstrip: false, single_word: false, special: true }],
    ["<|sep|>", { lstrip: false, rstrip: true, single_word: false, special: true }],
    ["cat", { lstrip: false, rstrip: false, single_word: true, special: false }],
    ["<both>", { lstrip: true, rstrip: true, single_word: false, special: false }],
  ];
  for (const [content, flags] of flagged) spec.added_tokens.push({ id: id++, content, normalized: false, ...flags });
  return JSON.stringify(spec);
}
const FLAG_TEXTS = ["a <mask> b", "a  \t<mask>", "<|sep|>   x", "x <|sep|>\n\ny", "cat", "a cat b", "cats", "concat", "cat_", "_cat",
  "cat1", "é cat", "écat", "x  <both>  y", "<mask><mask>", " <mask> <|sep|> cat ", "cat\u0301", "\u3000<mask>\u3000<|sep|>\u3000",
  "cat.", "(cat)", "cat½", "catⅫ", "cat\u200b", "cat\u200d", "cat‿", "cat🙂", "١cat", "cat\u00a0"];

const tmp = mkdtempSync(join(tmpdir(), "valar-tok-"));
try {
  // 1. stories15M (SentencePiece, llama.cpp's llm_tokenizer_spm).
  save("stories15M.json", {
    source: "llama.cpp via node-llama-cpp, vocabOnly, tokenize(text, specialTokens) / detokenize(ids, specialTokens)",
    model: "stories15M/stories15M-q8_0.gguf",
    cases: await recordLlama(join(MODELS, "stories15M/stories15M-q8_0.gguf"), TEXTS, 1),
  });

  // 2. Byte-level BPE: one trained vocabulary, written once per pre-tokenizer.
  const { tokens: bpeTokens, merges } = trainBpe(TRAINING_TEXT, N_MERGES);
  const tokens = [...bpeTokens, ...SPECIALS.map(([t]) => t)];
  const types = [...bpeTokens.map(() => TokenType.NORMAL), ...SPECIALS.map(([, type]) => type)];
  const bos = tokens.indexOf("<|begin_of_text|>"), eos = tokens.indexOf("<|endoftext|>");
  const bpeMetadata = (pre: string) => ({
    "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": pre, "tokenizer.ggml.tokens": tokens,
    "tokenizer.ggml.token_type": types, "tokenizer.ggml.merges": merges,
    "tokenizer.ggml.bos_token_id": bos, "tokenizer.ggml.eos_token_id": eos,
  });
  for (const pre of BPE_PRES) {
    const tokenizerMeta = bpeMetadata(pre);
    const path = join(tmp, `bpe-${pre}.gguf`);
    writeGGUF(path, { ...VOCAB_ONLY_HPARAMS, ...tokenizerMeta, "tokenizer.ggml.token_type": gguf.arrI32(types) }, []);
    save(`bpe-${pre}.json`, {
      source: `llama.cpp via node-llama-cpp on a vocab-only GGUF (byte-level BPE, ${merges.length} merges trained by scripts/record-tokenizer-fixtures.ts)`,
      metadata: tokenizerMeta,
      cases: await recordLlama(path, TEXTS, bos),
    });
  }

  // Compact: idsSpecial only where parsing specials changes the ids, decoded only where it is not the text.
  const more: Record<string, { ids: number[][]; idsSpecial: (number[] | null)[]; decoded: (string | null)[] }> = {};
  for (const pre of MORE_PRES) {
    const path = join(tmp, `bpe-${pre}.gguf`);
    writeGGUF(path, { ...VOCAB_ONLY_HPARAMS, ...bpeMetadata(pre), "tokenizer.ggml.token_type": gguf.arrI32(types) }, []);
    const cases = await recordLlama(path, SHORT_TEXTS, null);
    more[pre] = {
      ids: cases.map((c) => c.ids),
      idsSpecial: cases.map((c) => (JSON.stringify(c.idsSpecial) === JSON.stringify(c.ids) ? null : c.idsSpecial)),
      decoded: cases.map((c) => (c.decoded === c.text ? null : c.decoded)),
    };
  }
  save("bpe-more-pres.json", {
    source: "llama.cpp via node-llama-cpp on the vocabulary of bpe-*.json written with each tokenizer.ggml.pre; per pre, per text: ids, ids with specials parsed (null: same as ids), detokenized ids (null: the text itself)",
    texts: SHORT_TEXTS as never,
    pres: more as never,
  });

  // Byte-level tokenizer.json files (as SmolLM2, Qwen2.5, Llama 3 ship) around the same vocabulary,
  // and one whose added tokens carry the lstrip / rstrip / single_word flags.
  for (const style of ["smollm", "qwen2", "llama3", "flags"] as const) {
    const json = style === "flags" ? withFlaggedTokens(byteLevelTokenizerJson("smollm", tokens, types, merges, bos))
      : byteLevelTokenizerJson(style, tokens, types, merges, bos);
    const path = join(tmp, `${style}-tokenizer.json`);
    writeFileSync(path, json);
    const cases = recordHf(path, style === "flags" ? [...FLAG_TEXTS, ...TEXTS] : TEXTS);
    if (!cases) { console.log(`VALAR_PY_TOKENIZERS not set: keeping test/fixtures/tokenizer/hf-${style}.json`); continue; }
    save(`hf-${style}.json`, {
      source: "Hugging Face tokenizers (Python) on a byte-level tokenizer.json written by scripts/record-tokenizer-fixtures.ts",
      tokenizerJson: json as never,
      cases: cases as never,
    });
  }

  // 3. tinystories-656k: the Hugging Face reference, then llama.cpp on the converted vocabulary.
  const dir = join(MODELS, "tinystories-656k");
  const tokenizerJson = await Bun.file(join(dir, "tokenizer.json")).text();
  const tokenizerConfig = await Bun.file(join(dir, "tokenizer_config.json")).text();
  const hfCases = recordHf(join(dir, "tokenizer.json"), TEXTS);
  if (hfCases) {
    save("tinystories-hf.json", {
      source: "Hugging Face tokenizers (Python) Tokenizer.from_file(tokenizer.json): encode(text) and decode(ids, skip_special_tokens)",
      model: "tinystories-656k/tokenizer.json",
      cases: hfCases as never,
    });
  } else {
    console.log("VALAR_PY_TOKENIZERS not set: keeping test/fixtures/tokenizer/tinystories-hf.json");
  }
  // The same vocabulary with a Metaspace pre-tokenizer instead of the normalizer (the Llama 2 /
  // Mistral shape of tokenizer.json), prepending "first" without splitting, and "always" with.
  const METASPACE_PATCHES: Record<string, Record<string, unknown>> = {
    "metaspace-first": {
      normalizer: null,
      pre_tokenizer: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false },
      decoder: { type: "Sequence", decoders: [{ type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false }, { type: "ByteFallback" }, { type: "Fuse" }] },
    },
    "metaspace-always": {
      normalizer: null,
      pre_tokenizer: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "always", split: true },
      decoder: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "always", split: true },
    },
  };
  for (const [name, patch] of Object.entries(METASPACE_PATCHES)) {
    const path = join(tmp, `${name}.json`);
    writeFileSync(path, JSON.stringify({ ...JSON.parse(tokenizerJson), ...patch }));
    const cases = recordHf(path, TEXTS);
    if (!cases) continue;
    save(`tinystories-${name}.json`, {
      source: "Hugging Face tokenizers (Python) on tinystories-656k/tokenizer.json with `patch` applied",
      patch: patch as never,
      cases: cases as never,
    });
  }

  const converted = hfTokenizerToGGUF(tokenizerJson, tokenizerConfig);
  const convertedPath = join(tmp, "tinystories-vocab.gguf");
  writeGGUF(convertedPath, { ...VOCAB_ONLY_HPARAMS, ...Object.fromEntries(converted) }, []);
  // llama.cpp aborts on a character this vocabulary (no byte tokens) cannot spell: only texts
  // made of its characters go to it.
  const vocab = new Set(Object.keys(JSON.parse(tokenizerJson).model.vocab));
  const spellable = TEXTS.filter((t) => [...t.replaceAll(" ", "\u2581")].every((ch) => vocab.has(ch)));
  save("tinystories-gguf.json", {
    source: "llama.cpp via node-llama-cpp on the vocab-only GGUF written from hfTokenizerToGGUF(tokenizer.json, tokenizer_config.json)",
    model: "tinystories-656k (converted)",
    cases: await recordLlama(convertedPath, spellable, 1),
  });
} finally {
  rmSync(tmp, { recursive: true, force: true });
  await llama.dispose();
}
