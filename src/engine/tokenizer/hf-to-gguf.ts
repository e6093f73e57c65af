// The GGUF tokenizer metadata for a Hugging Face tokenizer.json, as llama.cpp's converter writes
// it, so that a converted file tokenizes in llama.cpp like the original does with `tokenizers`.
//
// - SentencePiece-style BPE (Metaspace/▁ normalizer, byte fallback; TinyStories, Llama 2,
//   Mistral): `llama` vocabulary. llama.cpp's converter gives every such token the score -1000,
//   which makes llama.cpp's SentencePiece merge loop ignore the BPE merge order; here a token's
//   score is minus the rank of the first merge that builds it, so the best-score-first loop
//   replays the BPE merges in their order.
// - Byte-level BPE (GPT-2 alphabet; SmolLM, Qwen2, Llama 3): `gpt2` vocabulary with the merges,
//   and `tokenizer.ggml.pre` recognised from the pre-tokenizer's regex.

import { gguf, type GGUFMetadataInput } from "../model/gguf-values.ts";
import { TokenType, TokenizerError } from "./types.ts";

interface AddedToken { id: number; content: string; special: boolean }
interface Component { type: string; [key: string]: unknown }

// Pre-tokenizer regexes (as in tokenizer.json) -> llama.cpp pre type.
const PRE_BY_REGEX: [pattern: string, pre: string][] = [
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", "llama-bpe"],
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", "qwen2"],
];

const BYTE_TOKEN = /^<0x[0-9A-Fa-f]{2}>$/;
/** Score of tokens no merge builds (specials, added tokens): never preferred. */
const UNMERGED_SCORE = -1e9;

function components(c: Component | null | undefined, key: string): Component[] {
  if (!c) return [];
  return c.type === "Sequence" ? (c[key] as Component[]).flatMap((x) => components(x, key)) : [c];
}

function tokenContent(t: unknown): string | undefined {
  return typeof t === "string" ? t : (t as { content?: string } | null | undefined)?.content;
}

export function hfTokenizerToGGUF(tokenizerJson: string, tokenizerConfig?: string): Map<string, GGUFMetadataInput> {
  let spec: { model: { type: string; vocab: Record<string, number>; merges?: (string | [string, string])[]; unk_token?: string | null }; added_tokens?: AddedToken[]; normalizer?: Component | null; pre_tokenizer?: Component | null; post_processor?: Component | null };
  let config: Record<string, unknown> = {};
  try {
    spec = JSON.parse(tokenizerJson);
    if (tokenizerConfig) config = JSON.parse(tokenizerConfig);
  } catch (e) {
    throw new TokenizerError(`tokenizer files are not valid JSON: ${(e as Error).message}`);
  }
  if (spec.model?.type !== "BPE") throw new TokenizerError(`cannot convert a '${spec.model?.type}' tokenizer.json (only BPE)`);

  const vocab = new Map<string, number>(Object.entries(spec.model.vocab));
  const added = spec.added_tokens ?? [];
  for (const t of added) vocab.set(t.content, t.id);
  let n = 0;
  for (const id of vocab.values()) n = Math.max(n, id + 1);
  const tokens: string[] = new Array(n);
  for (const [text, id] of vocab) tokens[id] = text;
  for (let i = 0; i < n; i++) if (tokens[i] === undefined) tokens[i] = `[PAD${i}]`; // llama.cpp's filler for holes

  const merges = (spec.model.merges ?? []).map((m): [string, string] => {
    if (Array.isArray(m)) return m;
    const at = m.indexOf(" ");
    return [m.slice(0, at), m.slice(at + 1)];
  });

  // Special ids: named in tokenizer_config.json, else the template's first token as BOS.
  const idOf = (key: string) => { const c = tokenContent(config[key]); return c !== undefined ? vocab.get(c) : undefined; };
  const specialIds = new Set(added.filter((t) => t.special).map((t) => t.id));
  const types = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const special = specialIds.has(i);
    const addedToken = added.find((t) => t.id === i);
    types[i] = BYTE_TOKEN.test(tokens[i]) ? TokenType.BYTE
      : special ? TokenType.CONTROL
      : addedToken ? TokenType.USER_DEFINED
      : TokenType.NORMAL;
  }

  const byteLevel = components(spec.pre_tokenizer, "pretokenizers").some((c) => c.type === "ByteLevel");
  const meta = new Map<string, GGUFMetadataInput>();
  if (byteLevel) {
    meta.set("tokenizer.ggml.model", gguf.str("gpt2"));
    meta.set("tokenizer.ggml.pre", gguf.str(detectPre(spec.pre_tokenizer)));
    meta.set("tokenizer.ggml.tokens", gguf.arrStr(tokens));
    meta.set("tokenizer.ggml.token_type", gguf.arrI32(types));
    meta.set("tokenizer.ggml.merges", gguf.arrStr(merges.map(([a, b]) => `${a} ${b}`)));
  } else {
    const scores = new Float32Array(n).fill(UNMERGED_SCORE);
    for (let i = 0; i < n; i++) if ([...tokens[i]].length === 1 || types[i] === TokenType.BYTE) scores[i] = 0;
    merges.forEach(([a, b], rank) => {
      const id = vocab.get(a + b);
      if (id !== undefined && scores[id] === UNMERGED_SCORE) scores[id] = -rank;
    });
    const prepend = components(spec.normalizer, "normalizers").some((c) => c.type === "Prepend" && c.prepend === "\u2581")
      || components(spec.pre_tokenizer, "pretokenizers").some((c) => c.type === "Metaspace" && c.prepend_scheme !== "never" && c.add_prefix_space !== false);
    meta.set("tokenizer.ggml.model", gguf.str("llama"));
    meta.set("tokenizer.ggml.pre", gguf.str("default"));
    meta.set("tokenizer.ggml.tokens", gguf.arrStr(tokens));
    meta.set("tokenizer.ggml.scores", gguf.arrF32(scores));
    meta.set("tokenizer.ggml.token_type", gguf.arrI32(types));
    meta.set("tokenizer.ggml.add_space_prefix", gguf.bool(prepend));
  }

  const templateFirst = (() => {
    const single = spec.post_processor?.type === "TemplateProcessing" ? (spec.post_processor.single as ({ SpecialToken?: { id: string } })[]) : [];
    const first = single[0]?.SpecialToken?.id;
    return first !== undefined ? vocab.get(first) : undefined;
  })();
  const ids: [key: string, id: number | undefined][] = [
    ["tokenizer.ggml.bos_token_id", idOf("bos_token") ?? templateFirst],
    ["tokenizer.ggml.eos_token_id", idOf("eos_token")],
    ["tokenizer.ggml.unknown_token_id", idOf("unk_token") ?? (spec.model.unk_token ? vocab.get(spec.model.unk_token) : undefined)],
    ["tokenizer.ggml.padding_token_id", idOf("pad_token")],
  ];
  for (const [key, id] of ids) if (id !== undefined) meta.set(key, gguf.u32(id));
  const addBos = typeof config.add_bos_token === "boolean" ? config.add_bos_token : templateFirst !== undefined;
  meta.set("tokenizer.ggml.add_bos_token", gguf.bool(addBos));
  meta.set("tokenizer.ggml.add_eos_token", gguf.bool(config.add_eos_token === true));
  if (typeof config.chat_template === "string") meta.set("tokenizer.chat_template", gguf.str(config.chat_template));
  return meta;
}

function detectPre(pre: Component | null | undefined): string {
  const parts = components(pre, "pretokenizers");
  const splitRegex = parts.map((c) => (c.pattern as { Regex?: string } | undefined)?.Regex).find((r) => r !== undefined);
  if (splitRegex !== undefined) {
    const hit = PRE_BY_REGEX.find(([pattern]) => pattern === splitRegex);
    if (hit) return hit[1];
  }
  // SmolLM / StarCoder: single digits split off, then the GPT-2 byte-level regex.
  if (parts.some((c) => c.type === "Digits" && c.individual_digits === true)) return "smollm";
  return "gpt-2";
}
