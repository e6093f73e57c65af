// The facts `valar info` prints about a model, gathered from the neutral ModelFile so a GGUF file
// and a Hugging Face directory are described alike. Tolerant of architectures the engine cannot
// run: sizes it cannot find are left out rather than failing the whole description.

import { statSync } from "node:fs";
import { typeName } from "./ggml-types.ts";
import type { GGUFValue, ModelFile } from "./types.ts";

export interface ModelDescription {
  path: string;
  format: ModelFile["format"];
  architecture: string;
  name?: string;
  layers?: number;
  embedding?: number;
  heads?: number;
  kvHeads?: number;
  ffn?: number;
  vocab?: number;
  headDim?: number;
  contextLength?: number;
  /** e.g. "llama (SentencePiece)", "gpt2 (byte-level BPE), pre smollm", "tokenizer.json BPE (byte fallback)". */
  tokenizer: string;
  chatTemplate: boolean;
  tensorCount: number;
  /** Tensor count per ggml type name, most frequent first. */
  tensorsByType: Record<string, number>;
  tensorBytes: number;
  fileBytes: number;
}

/** What each `tokenizer.ggml.model` value means. */
const GGUF_TOKENIZER_KINDS: Record<string, string> = {
  llama: "SentencePiece",
  gpt2: "byte-level BPE",
  bert: "WordPiece",
  t5: "Unigram",
  rwkv: "RWKV",
  none: "no vocabulary",
};

function asNumber(v: GGUFValue | undefined): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (v && typeof v === "object" && "length" in v && v.length > 0) return asNumber((v as ArrayLike<number>)[0]);
  return undefined;
}

function tokenizerKind(md: Map<string, GGUFValue>): string {
  const model = md.get("tokenizer.ggml.model");
  if (typeof model === "string") {
    const kind = GGUF_TOKENIZER_KINDS[model];
    const pre = md.get("tokenizer.ggml.pre");
    return `${model}${kind ? ` (${kind})` : ""}${typeof pre === "string" ? `, pre ${pre}` : ""}`;
  }
  const json = md.get("tokenizer.huggingface.json");
  if (typeof json === "string") {
    try {
      const t = JSON.parse(json).model ?? {};
      return `tokenizer.json ${t.type ?? "unknown model"}${t.byte_fallback ? " (byte fallback)" : ""}`;
    } catch {
      return "tokenizer.json (unreadable)";
    }
  }
  return "none";
}

function filesBytes(model: ModelFile): number {
  let total = 0;
  for (const file of new Set(model.tensors.map((t) => t.file))) {
    try {
      total += statSync(file).size;
    } catch {
      // a file that vanished since opening: count what can be counted
    }
  }
  return total;
}

export function describeModel(model: ModelFile): ModelDescription {
  const md = model.metadata;
  const arch = String(md.get("general.architecture") ?? "unknown");
  const key = (k: string) => asNumber(md.get(`${arch}.${k}`));
  const embd = model.tensors.find((t) => t.name === "token_embd.weight");
  const counts: Record<string, number> = {};
  for (const t of model.tensors) counts[typeName(t.type)] = (counts[typeName(t.type)] ?? 0) + 1;
  const sorted = Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  const embedding = key("embedding_length");
  const heads = key("attention.head_count");
  const name = md.get("general.name");
  return {
    path: model.path,
    format: model.format,
    architecture: arch,
    name: typeof name === "string" ? name : undefined,
    layers: key("block_count"),
    embedding,
    heads,
    kvHeads: key("attention.head_count_kv") ?? heads,
    ffn: key("feed_forward_length"),
    vocab: embd?.dims[1] ?? key("vocab_size"),
    headDim: key("attention.key_length") ?? (embedding && heads ? embedding / heads : undefined),
    contextLength: key("context_length"),
    tokenizer: tokenizerKind(md),
    chatTemplate: typeof md.get("tokenizer.chat_template") === "string",
    tensorCount: model.tensors.length,
    tensorsByType: sorted,
    tensorBytes: model.tensors.reduce((s, t) => s + t.nbytes, 0),
    fileBytes: filesBytes(model),
  };
}

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) (v /= 1024), i++;
  return i === 0 ? `${n} B` : `${v.toFixed(2)} ${units[i]} (${n} bytes)`;
}

/** Aligned `label  value` lines, as `valar info` prints them. */
export function formatDescription(d: ModelDescription): string {
  const opt = (v: number | undefined) => (v === undefined ? "?" : String(v));
  const rows: [string, string][] = [
    ["path", d.path],
    ["format", d.format === "gguf" ? "GGUF" : "Hugging Face safetensors directory"],
    ["architecture", d.architecture],
    ...(d.name ? [["name", d.name] as [string, string]] : []),
    ["layers", opt(d.layers)],
    ["embedding", opt(d.embedding)],
    ["heads", opt(d.heads)],
    ["kv heads", opt(d.kvHeads)],
    ["head dim", opt(d.headDim)],
    ["ffn", opt(d.ffn)],
    ["vocab", opt(d.vocab)],
    ["context length", opt(d.contextLength)],
    ["tokenizer", d.tokenizer],
    ["chat template", d.chatTemplate ? "yes" : "no"],
    ["tensors", `${d.tensorCount} (${Object.entries(d.tensorsByType).map(([t, n]) => `${t}: ${n}`).join(", ")})`],
    ["tensor bytes", bytes(d.tensorBytes)],
    ["file bytes", bytes(d.fileBytes)],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join("\n");
}
