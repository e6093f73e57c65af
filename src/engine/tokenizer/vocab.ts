// The vocabulary of a GGUF file as llama.cpp's llama_vocab::load reads it: tokens, scores, token
// types, special ids with the tokenizer model's defaults, the add_bos/add_eos/space-prefix flags,
// the special tokens matched in text, and the end-of-generation set.

import type { GGUFValue } from "../model/types.ts";
import { TokenType, TokenizerError, type Tokenizer } from "./types.ts";

export interface Vocab {
  model: string;
  pre: string;
  tokens: string[];
  scores: Float32Array;
  /** TokenType of each id (after llama.cpp's by-text overrides, e.g. `<|im_end|>` made CONTROL). */
  types: Uint8Array;
  textToId: Map<string, number>;
  bosId: number | null;
  eosId: number | null;
  unkId: number | null;
  addBos: boolean;
  addEos: boolean;
  addSpacePrefix: boolean;
  /** CONTROL, USER_DEFINED and UNKNOWN ids, longest text first: the order they are cut out of text. */
  specialIds: number[];
  /** ids that end generation. */
  eogIds: number[];
  /** BPE merges ("left right"), in rank order. */
  merges?: string[];
}

type Meta = Map<string, GGUFValue>;

function num(meta: Meta, key: string): number | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "boolean") return v ? 1 : 0;
  throw new TokenizerError(`metadata ${key} should be a number, got ${typeof v}`);
}

function bool(meta: Meta, key: string): boolean | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v === "boolean") return v;
  if (typeof v === "number" || typeof v === "bigint") return Number(v) !== 0;
  throw new TokenizerError(`metadata ${key} should be a boolean, got ${typeof v}`);
}

/** The fields of a Tokenizer that come straight from its vocabulary. */
export function vocabIds(vocab: Vocab): Pick<Tokenizer, "vocabSize" | "bosId" | "eosId" | "stopIds"> {
  return { vocabSize: vocab.tokens.length, bosId: vocab.bosId, eosId: vocab.eosId, stopIds: vocab.eogIds };
}

export function metaString(meta: Meta, key: string): string | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new TokenizerError(`metadata ${key} should be a string`);
  return v;
}

export function metaStrings(meta: Meta, key: string): string[] | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) throw new TokenizerError(`metadata ${key} should be an array of strings`);
  return v as string[];
}

function numbers(meta: Meta, key: string, n: number): ArrayLike<number> | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== "object" || typeof (v as ArrayLike<number>).length !== "number") throw new TokenizerError(`metadata ${key} should be an array of numbers`);
  const arr = v as ArrayLike<number>;
  if (arr.length < n) throw new TokenizerError(`metadata ${key} has ${arr.length} entries for ${n} tokens`);
  return arr;
}

// Per tokenizer model: llama.cpp's default special ids and flags before the file's own keys.
const MODEL_DEFAULTS: Record<string, { bos: number | null; eos: number | null; unk: number | null; addBos: boolean; addSpacePrefix: boolean }> = {
  llama: { bos: 1, eos: 2, unk: 0, addBos: true, addSpacePrefix: true },
  gpt2: { bos: 11, eos: 11, unk: null, addBos: false, addSpacePrefix: false },
};

// Texts llama.cpp treats as end-of-generation whatever their stored type (llama-vocab.cpp).
const EOG_TEXTS = new Set([
  "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
  "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
  "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
]);
// Texts whose first match becomes the EOT / EOM id when the file names none.
const EOT_TEXTS = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
  "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"];

const nodeBuffer = (globalThis as { Buffer?: { byteLength(s: string, enc: "utf8"): number } }).Buffer;

/** Bytes of a string in UTF-8 (a lone surrogate counts as U+FFFD's three), on any host (natively where there is a Buffer). */
export function utf8Length(s: string): number {
  if (nodeBuffer) return nodeBuffer.byteLength(s, "utf8");
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++; }
    else n += 3;
  }
  return n;
}

export function readGGUFVocab(meta: Meta): Vocab {
  const model = metaString(meta, "tokenizer.ggml.model");
  if (model === undefined) throw new TokenizerError("model has no tokenizer (tokenizer.ggml.model missing)");
  const defaults = MODEL_DEFAULTS[model];
  if (!defaults) throw new TokenizerError(`unsupported tokenizer model '${model}' (supported: ${Object.keys(MODEL_DEFAULTS).join(", ")})`);
  const stored = metaStrings(meta, "tokenizer.ggml.tokens");
  if (!stored || stored.length === 0) throw new TokenizerError("tokenizer.ggml.tokens is missing or empty");
  const n = stored.length;
  // llama.cpp renames empty tokens so that every text maps back to one id.
  const tokens = stored.includes("") ? stored.map((t, i) => (t === "" ? `[EMPTY_${i}]` : t)) : stored;

  const scoresIn = numbers(meta, "tokenizer.ggml.scores", n);
  const scores = new Float32Array(n);
  if (scoresIn) for (let i = 0; i < n; i++) scores[i] = scoresIn[i];
  const typesIn = numbers(meta, "tokenizer.ggml.token_type", n);
  const types = new Uint8Array(n).fill(TokenType.NORMAL);
  if (typesIn) for (let i = 0; i < n; i++) types[i] = typesIn[i] >= 0 && typesIn[i] <= 6 ? typesIn[i] : TokenType.UNDEFINED;

  const textToId = new Map<string, number>();
  for (let i = 0; i < n; i++) textToId.set(tokens[i], i);

  const specialId = (key: string, fallback: number | null): number | null => {
    const inRange = (id: number | null) => (id !== null && id >= 0 && id < n ? id : null);
    const v = num(meta, key);
    return v === undefined || v >= n ? inRange(fallback) : v;
  };
  const pre = metaString(meta, "tokenizer.ggml.pre") ?? "default";
  const bosId = specialId("tokenizer.ggml.bos_token_id", NO_BOS_PRES.has(pre) ? null : defaults.bos);
  const eosId = specialId("tokenizer.ggml.eos_token_id", defaults.eos);
  const unkId = specialId("tokenizer.ggml.unknown_token_id", defaults.unk);
  let eotId = specialId("tokenizer.ggml.eot_token_id", null);
  let eomId = specialId("tokenizer.ggml.eom_token_id", null);

  const addBos = bool(meta, "tokenizer.ggml.add_bos_token") ?? (model === "gpt2" ? BOS_PRES.has(pre) : defaults.addBos);
  const addEos = bool(meta, "tokenizer.ggml.add_eos_token") ?? false;
  const addSpacePrefix = bool(meta, "tokenizer.ggml.add_space_prefix") ?? defaults.addSpacePrefix;

  // End-of-generation tokens are found by text; llama.cpp forces them to CONTROL.
  const forceControl = (id: number) => { if (types[id] !== TokenType.CONTROL) types[id] = TokenType.CONTROL; };
  if (eotId === null) eotId = EOT_TEXTS.map((t) => textToId.get(t)).find((id) => id !== undefined) ?? null;
  if (eomId === null) eomId = textToId.get("<|eom_id|>") ?? null;
  for (const id of [eotId, eomId]) if (id !== null) forceControl(id);
  const eog = new Set<number>();
  for (const text of EOG_TEXTS) {
    const id = textToId.get(text);
    if (id !== undefined) { eog.add(id); forceControl(id); }
  }
  for (const id of [eosId, eotId, eomId]) if (id !== null) eog.add(id);

  const specialIds: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = types[i];
    if (t === TokenType.CONTROL || t === TokenType.USER_DEFINED || t === TokenType.UNKNOWN) specialIds.push(i);
  }
  const lengths = new Map(specialIds.map((id) => [id, utf8Length(tokens[id])]));
  specialIds.sort((a, b) => lengths.get(b)! - lengths.get(a)! || a - b);

  return {
    model, pre, tokens, scores, types, textToId, bosId, eosId, unkId, addBos, addEos, addSpacePrefix,
    specialIds, eogIds: [...eog].sort((a, b) => a - b), merges: metaStrings(meta, "tokenizer.ggml.merges"),
  };
}

/** `tokenizer.ggml.pre` values llama.cpp reads as Llama 3 (which also turns add_bos on). */
export const LLAMA3_PRES = new Set(["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"]);
/** Byte-level pre types for which llama.cpp adds BOS unless the file says otherwise. */
const BOS_PRES = new Set([...LLAMA3_PRES, "tekken", "chameleon"]);
/** Pre types whose default BOS llama.cpp removes. */
const NO_BOS_PRES = new Set(["glm4", "chatglm-bpe"]);
