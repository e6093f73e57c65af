// Model hyperparameters: the numbers a forward pass needs, read from GGUF-style metadata and
// tensor shapes the same way for a GGUF file and a Hugging Face directory. What differs between
// architectures is data in ARCHS, not branches.

import { ModelFileError } from "./errors.ts";
import type { GGUFValue, ModelFile } from "./types.ts";

export type RopeStyle = "norm" | "neox";

export type RopeScaling =
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalContext: number }
  | { type: "linear"; factor: number };

export interface HParams {
  arch: string;
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nFf: number;
  /** Context length the model was trained with. */
  nCtx: number;
  nVocab: number;
  rmsEps: number;
  ropeTheta: number;
  /** "norm": rotate adjacent pairs (GGUF llama layout); "neox": rotate halves (qwen2/qwen3). */
  ropeStyle: RopeStyle;
  ropeScaling: RopeScaling | null;
  /**
   * Name of a tensor of per-dimension RoPE frequency divisors (llama.cpp's converter stores
   * Llama-3 scaling this way, as `rope_freqs.weight`), when the file has one.
   */
  ropeFreqsTensor: string | null;
  /** No `output.weight`: the output projection reuses `token_embd.weight`. */
  tiedEmbeddings: boolean;
  hasQKVBias: boolean;
  hasQKNorm: boolean;
}

interface ArchSpec {
  ropeStyle: RopeStyle;
  /** q/k/v biases are part of the architecture (qwen2): a file without them is broken. */
  qkvBias: boolean;
  /** Per-head RMSNorm of q and k before RoPE (qwen3): required tensors. */
  qkNorm: boolean;
}

/** Supported architectures, keyed by `general.architecture`. */
export const ARCHS: Record<string, ArchSpec> = {
  llama: { ropeStyle: "norm", qkvBias: false, qkNorm: false },
  qwen2: { ropeStyle: "neox", qkvBias: true, qkNorm: false },
  qwen3: { ropeStyle: "neox", qkvBias: false, qkNorm: true },
};

function asNumber(v: GGUFValue | undefined): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  return undefined;
}

/** Llama-3 RoPE scaling defaults (those of Meta's reference code and llama.cpp's converter). */
const LLAMA3_DEFAULTS = { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 };

export function readHParams(model: ModelFile): HParams {
  const md = model.metadata;
  const fail = (problem: string): never => {
    throw new ModelFileError(model.path, problem);
  };
  const arch = md.get("general.architecture");
  if (typeof arch !== "string") fail("no general.architecture in the metadata");
  const spec = ARCHS[arch as string];
  if (!spec) fail(`unsupported architecture "${String(arch)}" (supported: ${Object.keys(ARCHS).join(", ")})`);
  const key = (k: string) => `${arch}.${k}`;
  const opt = (k: string) => asNumber(md.get(key(k)));
  const req = (k: string): number => {
    const v = opt(k);
    if (v === undefined) fail(`missing or non-numeric metadata ${key(k)}`);
    return v as number;
  };

  const tensorNames = new Set(model.tensors.map((t) => t.name));
  const embd = model.tensors.find((t) => t.name === "token_embd.weight");
  if (!embd) fail("no token_embd.weight tensor");

  const nEmbd = req("embedding_length");
  const nHead = req("attention.head_count");
  // head_count_kv may be absent (no GQA) or, in some files, a per-layer array: take the first.
  const kvRaw = md.get(key("attention.head_count_kv"));
  const nHeadKv = asNumber(kvRaw) ?? (kvRaw && typeof kvRaw === "object" ? Number((kvRaw as ArrayLike<number>)[0]) : nHead);
  const headDim = opt("attention.key_length") ?? nEmbd / nHead;
  if (!Number.isInteger(headDim)) fail(`embedding length ${nEmbd} is not divisible by ${nHead} heads`);
  if (nHead % nHeadKv !== 0) fail(`${nHead} heads cannot be grouped over ${nHeadKv} KV heads`);

  const hasQKVBias = tensorNames.has("blk.0.attn_q.bias");
  const hasQKNorm = tensorNames.has("blk.0.attn_q_norm.weight");
  if (spec.qkvBias && !hasQKVBias) fail(`${arch} model lacks its q/k/v biases (no blk.0.attn_q.bias)`);
  if (spec.qkNorm && !hasQKNorm) fail(`${arch} model lacks its q/k norms (no blk.0.attn_q_norm.weight)`);

  const scalingType = md.get(key("rope.scaling.type"));
  let ropeScaling: RopeScaling | null = null;
  if (scalingType === "llama3") {
    ropeScaling = {
      type: "llama3",
      factor: opt("rope.scaling.factor") ?? LLAMA3_DEFAULTS.factor,
      lowFreqFactor: opt("rope.scaling.low_freq_factor") ?? LLAMA3_DEFAULTS.lowFreqFactor,
      highFreqFactor: opt("rope.scaling.high_freq_factor") ?? LLAMA3_DEFAULTS.highFreqFactor,
      originalContext: opt("rope.scaling.original_context_length") ?? LLAMA3_DEFAULTS.originalContext,
    };
  } else if (scalingType === "linear") {
    ropeScaling = { type: "linear", factor: req("rope.scaling.factor") };
  } else if (scalingType !== undefined && scalingType !== "none") {
    fail(`unsupported RoPE scaling type "${String(scalingType)}"`);
  }

  return {
    arch: arch as string,
    nLayer: req("block_count"),
    nEmbd,
    nHead,
    nHeadKv,
    headDim,
    nFf: req("feed_forward_length"),
    nCtx: req("context_length"),
    nVocab: embd!.dims[1],
    rmsEps: req("attention.layer_norm_rms_epsilon"),
    ropeTheta: opt("rope.freq_base") ?? 10000,
    ropeStyle: spec.ropeStyle,
    ropeScaling,
    ropeFreqsTensor: tensorNames.has("rope_freqs.weight") ? "rope_freqs.weight" : null,
    tiedEmbeddings: !tensorNames.has("output.weight"),
    hasQKVBias,
    hasQKNorm,
  };
}

/**
 * Per-dimension-pair frequency divisors for Llama-3 RoPE scaling (length headDim/2): pair i
 * rotates at theta^(-2i/d) / factors[i]. Long wavelengths are slowed by `factor`, short ones
 * kept, and those in between interpolated (Meta's `apply_scaling`, as llama.cpp's converter
 * stores it in `rope_freqs.weight`).
 */
export function llama3RopeFactors(hp: Pick<HParams, "headDim" | "ropeTheta">, s: Extract<RopeScaling, { type: "llama3" }>): Float32Array {
  const out = new Float32Array(hp.headDim / 2);
  const lowWavelen = s.originalContext / s.lowFreqFactor;
  const highWavelen = s.originalContext / s.highFreqFactor;
  for (let i = 0; i < out.length; i++) {
    const freq = 1 / Math.pow(hp.ropeTheta, (2 * i) / hp.headDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalContext / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}
