// A Hugging Face model directory (config.json, *.safetensors, tokenizer.json,
// tokenizer_config.json) presented as a ModelFile: GGUF-style metadata synthesized from
// config.json, tensors renamed to GGUF names with dims in ggml order, and q/k projections of
// llama checkpoints permuted from HF's rotate-half layout to GGUF's interleaved one on read, as
// llama.cpp's convert_hf_to_gguf does. Nothing downstream needs to know it was not a GGUF.

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { ByteSource } from "./byte-source.ts";
import { openFileSource } from "./file-source.ts";
import { ModelFileError } from "./errors.ts";
import { readSafetensorsHeader } from "./safetensors.ts";
import type { GGUFValue, ModelFile, TensorInfo } from "./types.ts";

export interface HFModelDir extends ModelFile {
  format: "safetensors";
  /** Parsed config.json. */
  config: Record<string, unknown>;
  /** Total size of the weight files. */
  fileBytes: number;
}

interface ArchRecipe {
  /** GGUF architecture name. */
  arch: string;
  /** Whether llama.cpp's converter permutes q/k rows for this architecture (normal-style RoPE). */
  permuteQK: boolean;
}

/** config.json `model_type` -> how to present it. */
const MODEL_TYPES: Record<string, ArchRecipe> = {
  llama: { arch: "llama", permuteQK: true },
  mistral: { arch: "llama", permuteQK: true },
  qwen2: { arch: "qwen2", permuteQK: false },
  qwen3: { arch: "qwen3", permuteQK: false },
};

/** HF tensor name patterns -> GGUF names (`$1` is the layer index). */
const TENSOR_NAMES: [RegExp, string][] = [
  [/^model\.embed_tokens\.weight$/, "token_embd.weight"],
  [/^model\.norm\.weight$/, "output_norm.weight"],
  [/^lm_head\.weight$/, "output.weight"],
  [/^model\.layers\.(\d+)\.self_attn\.q_proj\.(weight|bias)$/, "blk.$1.attn_q.$2"],
  [/^model\.layers\.(\d+)\.self_attn\.k_proj\.(weight|bias)$/, "blk.$1.attn_k.$2"],
  [/^model\.layers\.(\d+)\.self_attn\.v_proj\.(weight|bias)$/, "blk.$1.attn_v.$2"],
  [/^model\.layers\.(\d+)\.self_attn\.o_proj\.(weight|bias)$/, "blk.$1.attn_output.$2"],
  [/^model\.layers\.(\d+)\.self_attn\.q_norm\.weight$/, "blk.$1.attn_q_norm.weight"],
  [/^model\.layers\.(\d+)\.self_attn\.k_norm\.weight$/, "blk.$1.attn_k_norm.weight"],
  [/^model\.layers\.(\d+)\.mlp\.gate_proj\.weight$/, "blk.$1.ffn_gate.weight"],
  [/^model\.layers\.(\d+)\.mlp\.up_proj\.weight$/, "blk.$1.ffn_up.weight"],
  [/^model\.layers\.(\d+)\.mlp\.down_proj\.weight$/, "blk.$1.ffn_down.weight"],
  [/^model\.layers\.(\d+)\.input_layernorm\.weight$/, "blk.$1.attn_norm.weight"],
  [/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, "blk.$1.ffn_norm.weight"],
];
/** Stored tensors that are derived state, not weights (llama.cpp's converter drops them too). */
const IGNORED_TENSORS = [/\.rotary_emb\.inv_freq$/];

// Tensor order as in llama.cpp's GGUFs: embedding, then layer by layer, then the head.
const LAYER_ORDER = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_q_norm", "attn_k_norm", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"];
function tensorRank(name: string): number {
  if (name === "token_embd.weight") return -1;
  const m = /^blk\.(\d+)\.(\w+)\.(weight|bias)$/.exec(name);
  if (m) return Number(m[1]) * 100 + LAYER_ORDER.indexOf(m[2]) * 2 + (m[3] === "bias" ? 1 : 0);
  return name === "output_norm.weight" ? 1e9 : 1e9 + 1;
}

export function ggufTensorName(hfName: string): string | undefined {
  for (const [pattern, gguf] of TENSOR_NAMES) if (pattern.test(hfName)) return hfName.replace(pattern, gguf);
  return undefined;
}

function readJson(dir: string, file: string, required: true): Record<string, unknown>;
function readJson(dir: string, file: string, required: false): Record<string, unknown> | undefined;
function readJson(dir: string, file: string, required: boolean): Record<string, unknown> | undefined {
  const path = join(dir, file);
  if (!existsSync(path)) {
    if (required) throw new ModelFileError(dir, `not a model directory: no ${file}`);
    return undefined;
  }
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new ModelFileError(path, `invalid JSON (${(e as Error).message})`);
  }
}

function readText(dir: string, file: string): string | undefined {
  const path = join(dir, file);
  return existsSync(path) ? readFileSync(path, "utf8") : undefined;
}

/** The weight files: the shards an index names, else every *.safetensors in the directory. */
function weightFiles(dir: string): string[] {
  const index = readJson(dir, "model.safetensors.index.json", false);
  if (index) {
    const map = index.weight_map as Record<string, string> | undefined;
    if (!map || typeof map !== "object") throw new ModelFileError(join(dir, "model.safetensors.index.json"), "no weight_map");
    const files = [...new Set(Object.values(map))].map((f) => join(dir, f));
    for (const f of files) if (!existsSync(f)) throw new ModelFileError(f, "shard named in model.safetensors.index.json is missing");
    return files;
  }
  const files = readdirSync(dir).filter((f) => f.endsWith(".safetensors")).sort().map((f) => join(dir, f));
  if (files.length === 0) throw new ModelFileError(dir, "no *.safetensors weight files");
  return files;
}

const num = (v: unknown) => (typeof v === "number" ? v : undefined);

/** GGUF-style hyperparameter keys from config.json. */
function configMetadata(dir: string, config: Record<string, unknown>, arch: string): Map<string, GGUFValue> {
  const md = new Map<string, GGUFValue>();
  const need = (key: string): number => {
    const v = num(config[key]);
    if (v === undefined) throw new ModelFileError(join(dir, "config.json"), `missing or non-numeric "${key}"`);
    return v;
  };
  const nHead = need("num_attention_heads");
  const nEmbd = need("hidden_size");
  const headDim = num(config.head_dim);
  md.set("general.architecture", arch);
  md.set("general.name", basename(resolve(dir)));
  const set = (suffix: string, v: number | string | undefined) => {
    if (v !== undefined) md.set(`${arch}.${suffix}`, v);
  };
  set("context_length", need("max_position_embeddings"));
  set("embedding_length", nEmbd);
  set("block_count", need("num_hidden_layers"));
  set("feed_forward_length", need("intermediate_size"));
  set("attention.head_count", nHead);
  set("attention.head_count_kv", num(config.num_key_value_heads) ?? nHead);
  set("attention.layer_norm_rms_epsilon", need("rms_norm_eps"));
  set("rope.freq_base", num(config.rope_theta) ?? 10000);
  set("rope.dimension_count", headDim ?? nEmbd / nHead);
  set("attention.key_length", headDim);
  set("attention.value_length", headDim);
  set("vocab_size", num(config.vocab_size));

  const scaling = config.rope_scaling as Record<string, unknown> | null | undefined;
  const scalingType = scaling ? String(scaling.rope_type ?? scaling.type ?? "") : "";
  if (scaling && scalingType && scalingType !== "default") {
    set("rope.scaling.type", scalingType);
    set("rope.scaling.factor", num(scaling.factor));
    set("rope.scaling.original_context_length", num(scaling.original_max_position_embeddings));
    set("rope.scaling.low_freq_factor", num(scaling.low_freq_factor));
    set("rope.scaling.high_freq_factor", num(scaling.high_freq_factor));
  }
  return md;
}

/** Chat template from chat_template.jinja or tokenizer_config.json (a string, or a named list). */
function chatTemplate(dir: string, tokenizerConfig: Record<string, unknown> | undefined): string | undefined {
  const jinja = readText(dir, "chat_template.jinja");
  if (jinja !== undefined) return jinja;
  const t = tokenizerConfig?.chat_template;
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    const named = t as { name?: string; template?: string }[];
    return (named.find((x) => x.name === "default") ?? named[0])?.template;
  }
  return undefined;
}

/**
 * Reorders the rows of a q/k projection (or bias) from rotate-half order (per head: first the
 * x-halves of all rotation pairs, then the y-halves) to interleaved order (pairs adjacent):
 * new row h*d + 2i + j = old row h*d + j*d/2 + i.
 */
export function permuteRotateHalfRows(data: Uint8Array, rows: number, nHead: number): Uint8Array {
  const headDim = rows / nHead;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new RangeError(`cannot split ${rows} rows into ${nHead} heads of even size`);
  const rowBytes = data.byteLength / rows;
  const half = headDim / 2;
  const out = new Uint8Array(data.byteLength);
  for (let h = 0; h < nHead; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = h * headDim + j * half + i;
        const dst = h * headDim + 2 * i + j;
        out.set(data.subarray(src * rowBytes, (src + 1) * rowBytes), dst * rowBytes);
      }
    }
  }
  return out;
}

export function openHFDir(dir: string): HFModelDir {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ModelFileError(dir, "not a directory");
  const config = readJson(dir, "config.json", true);
  const modelType = String(config.model_type ?? "");
  const recipe = MODEL_TYPES[modelType];
  if (!recipe) {
    throw new ModelFileError(join(dir, "config.json"), `unsupported model_type "${modelType}" (supported: ${Object.keys(MODEL_TYPES).join(", ")})`);
  }
  const metadata = configMetadata(dir, config, recipe.arch);
  const tokenizerJson = readText(dir, "tokenizer.json");
  const tokenizerConfigText = readText(dir, "tokenizer_config.json");
  let tokenizerConfig: Record<string, unknown> | undefined;
  if (tokenizerConfigText !== undefined) tokenizerConfig = readJson(dir, "tokenizer_config.json", false);
  if (tokenizerJson !== undefined) metadata.set("tokenizer.huggingface.json", tokenizerJson);
  if (tokenizerConfigText !== undefined) metadata.set("tokenizer.huggingface.config", tokenizerConfigText);
  const template = chatTemplate(dir, tokenizerConfig);
  if (template !== undefined) metadata.set("tokenizer.chat_template", template);

  const sources: ByteSource[] = [];
  const tensors: TensorInfo[] = [];
  const byName = new Map<string, { info: TensorInfo; src: ByteSource }>();
  let fileBytes = 0;
  try {
    for (const file of weightFiles(dir)) {
      const src = openFileSource(file);
      sources.push(src);
      fileBytes += src.size;
      for (const t of readSafetensorsHeader(src).tensors) {
        if (IGNORED_TENSORS.some((p) => p.test(t.name))) continue;
        const name = ggufTensorName(t.name);
        if (!name) throw new ModelFileError(file, `tensor "${t.name}" has no GGUF equivalent (unsupported for ${modelType})`);
        if (byName.has(name)) throw new ModelFileError(file, `tensor "${t.name}" appears twice`);
        const info: TensorInfo = { name, type: t.type, dims: [...t.shape].reverse(), offset: t.offset, nbytes: t.nbytes, file };
        byName.set(name, { info, src });
      }
    }
  } catch (e) {
    for (const s of sources) s.close();
    if (e instanceof ModelFileError) throw e;
    throw new ModelFileError(dir, (e as Error).message);
  }

  // Tied embeddings: a checkpoint may store the shared matrix under either name (and
  // TinyStories-656K keeps only lm_head.weight and aliases embed_tokens to it); GGUF keeps
  // token_embd only, and llama.cpp reuses it for the output when output.weight is absent.
  const tied = config.tie_word_embeddings !== false;
  const output = byName.get("output.weight");
  if (tied && output && !byName.has("token_embd.weight")) {
    byName.delete("output.weight");
    byName.set("token_embd.weight", { ...output, info: { ...output.info, name: "token_embd.weight" } });
  } else if (tied && output && config.tie_word_embeddings === true) {
    byName.delete("output.weight");
  }
  if (!byName.has("token_embd.weight")) {
    for (const s of sources) s.close();
    throw new ModelFileError(dir, "no token embedding (model.embed_tokens.weight) in the weights");
  }
  tensors.push(...[...byName.values()].map((e) => e.info).sort((a, b) => tensorRank(a.name) - tensorRank(b.name)));

  const nHead = metadata.get(`${recipe.arch}.attention.head_count`) as number;
  const nHeadKv = metadata.get(`${recipe.arch}.attention.head_count_kv`) as number;
  // Which tensors come back permuted, and over how many heads.
  const permuteHeads = (name: string): number | undefined => {
    if (!recipe.permuteQK) return undefined;
    if (/^blk\.\d+\.attn_q\.(weight|bias)$/.test(name)) return nHead;
    if (/^blk\.\d+\.attn_k\.(weight|bias)$/.test(name)) return nHeadKv;
    return undefined;
  };

  return {
    path: dir,
    format: "safetensors",
    config,
    fileBytes,
    metadata,
    tensors,
    read(name) {
      const entry = byName.get(name);
      if (!entry) throw new ModelFileError(dir, `no tensor named "${name}"`);
      const { info, src } = entry;
      const data = src.read(info.offset, info.nbytes);
      const heads = permuteHeads(name);
      if (heads === undefined) return data;
      const rows = info.dims.length > 1 ? info.dims[1] : info.dims[0];
      try {
        return permuteRotateHalfRows(data, rows, heads);
      } catch (e) {
        throw new ModelFileError(info.file, `tensor "${name}": ${(e as Error).message}`);
      }
    },
    close() {
      for (const s of sources) s.close();
    },
  };
}
