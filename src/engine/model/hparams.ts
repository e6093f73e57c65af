// Model hyperparameters: the numbers a forward pass needs, read from GGUF-style metadata and
// tensor shapes the same way for a GGUF file and a Hugging Face directory. What differs between
// architectures is data in ARCHS, not branches.

import { ModelFileError } from "./errors.ts";
import type { GGUFValue, ModelFile } from "./types.ts";

export type RopeStyle = "norm" | "neox";

export type RopeScaling =
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalContext: number }
  | { type: "linear"; factor: number }
  /**
   * Phi-3's LongRoPE: per-pair frequency divisors stored as two tensors, the long ones used when
   * a sequence may run past the trained context (llama.cpp's rule); its attention factor is
   * HParams.ropeAttnFactor.
   */
  | { type: "longrope"; shortFactors: string; longFactors: string; originalContext: number };

/** What differs between a model's layers. */
export interface LayerHParams {
  /** Positions each query sees, itself included (a sliding-window layer); 0: all before it. */
  window: number;
  /** Which RoPE table the layer's q and k rotate by ("none": smollm3's position-free layers). */
  rope: "global" | "local" | "none";
}

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
  /** Dimensions of each head that RoPE rotates (the rest pass through); headDim unless partial. */
  nRot: number;
  /** cos and sin times this (LongRoPE's attention factor); 1: none. */
  ropeAttnFactor: number;
  /** RoPE base of the local (sliding-window) layers (gemma3's differs from the global one). */
  ropeThetaLocal: number;
  /** Token embeddings times this (gemma: sqrt(n_embd); granite: embedding_scale). */
  embedScale: number;
  /** q times this before attention (gemma, phi3 scale q rather than the scores); 1: none. */
  qScale: number;
  /** Each q·k score times this: 1/sqrt(headDim), granite's attention.scale, 1 where q carries it. */
  kqScale: number;
  /** Scores s -> cap * tanh(s / cap) (gemma2); 0: off. */
  attnSoftcap: number;
  /** Logits l -> cap * tanh(l / cap) (gemma2); 0: off. */
  finalSoftcap: number;
  /** Logits divided by this (granite); 1: none. */
  logitScale: number;
  /** Attention and FFN outputs times this before joining the residual stream (granite); 1: none. */
  residualScale: number;
  /** The FFN's gate activation: SwiGLU or GeGLU (gemma, tanh-approximated GELU). */
  ffnAct: FfnActivation;
  layers: LayerHParams[];
}

export type FfnActivation = "silu" | "gelu";

interface ArchSpec {
  ropeStyle: RopeStyle;
  /** q/k/v biases are part of the architecture (qwen2): a file without them is broken. */
  qkvBias: boolean;
  /** Per-head RMSNorm of q and k before RoPE (qwen3, gemma3): required tensors. */
  qkNorm: boolean;
  /** Token embeddings times sqrt(n_embd) (gemma). */
  embedSqrt?: boolean;
  ffnAct?: FfnActivation;
  /**
   * q scaled before attention instead of the scores (gemma, phi3), by 1/sqrt of this many
   * dimensions (gemma's 27B models use n_embd / n_head, the others the head size).
   */
  qPrescale?: (hp: { nLayer: number; nEmbd: number; nHead: number; headDim: number }) => number;
  /** Soft-capping defaults where the metadata has no key: 0 is off (gemma2: 50 and 30). */
  softcap?: { attn: number; final: number };
  /**
   * Sliding-window layers: every layer but each `pattern`-th (llama.cpp's default pattern,
   * unless the file has attention.sliding_window_pattern); a window of `window` when the file
   * names none (0: no sliding window without the key); local layers rotate at `localTheta`
   * ("same": the global base) unless the file has rope.freq_base_swa.
   */
  swa?: { pattern: number; window: number; localTheta: number | "same" };
  /** Every n-th layer has no RoPE (smollm3). */
  noRopeEvery?: number;
  /** Reads granite's embedding, residual, attention and logit scales. */
  graniteScales?: boolean;
}

/**
 * 1.0f / sqrtf(n), in float as llama.cpp computes its attention scales (for a head size of 96,
 * 1 / Math.sqrt(96) rounds to the next float up).
 */
const invSqrtF32 = (n: number) => Math.fround(1 / Math.fround(Math.sqrt(n)));

/** 1/sqrt(head size), or for gemma's 27B models (46 / 62 layers) 1/sqrt(n_embd / n_head). */
const gemmaQScale = (bigAt: number) => (hp: { nLayer: number; nEmbd: number; nHead: number; headDim: number }) =>
  invSqrtF32(hp.nLayer === bigAt ? Math.floor(hp.nEmbd / hp.nHead) : hp.headDim);

/**
 * Supported architectures, keyed by `general.architecture`. Mistral's and SmolLM2's files say
 * "llama"; phi3 covers Phi-3, Phi-3.5 and Phi-4-mini (fused qkv and gate|up tensors, partial
 * and LongRoPE rotations); each one's layer steps are in recipe.ts.
 */
export const ARCHS: Record<string, ArchSpec> = {
  llama: { ropeStyle: "norm", qkvBias: false, qkNorm: false },
  qwen2: { ropeStyle: "neox", qkvBias: true, qkNorm: false },
  qwen3: { ropeStyle: "neox", qkvBias: false, qkNorm: true },
  phi3: { ropeStyle: "neox", qkvBias: false, qkNorm: false, qPrescale: (hp) => invSqrtF32(hp.headDim) },
  gemma2: {
    ropeStyle: "neox", qkvBias: false, qkNorm: false, embedSqrt: true, ffnAct: "gelu", qPrescale: gemmaQScale(46),
    softcap: { attn: 50, final: 30 }, swa: { pattern: 2, window: 4096, localTheta: "same" },
  },
  gemma3: {
    ropeStyle: "neox", qkvBias: false, qkNorm: true, embedSqrt: true, ffnAct: "gelu", qPrescale: gemmaQScale(62),
    softcap: { attn: 0, final: 0 }, swa: { pattern: 6, window: 0, localTheta: 10000 },
  },
  granite: { ropeStyle: "norm", qkvBias: false, qkNorm: false, graniteScales: true },
  smollm3: { ropeStyle: "norm", qkvBias: false, qkNorm: false, noRopeEvery: 4 },
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
  if (scalingType === "longrope") {
    const [shortFactors, longFactors] = ["rope_factors_short.weight", "rope_factors_long.weight"];
    if (!tensorNames.has(shortFactors) || !tensorNames.has(longFactors)) fail("LongRoPE scaling without its rope_factors_short/long tensors");
    ropeScaling = { type: "longrope", shortFactors, longFactors, originalContext: opt("rope.scaling.original_context_length") ?? req("context_length") };
  } else if (scalingType === "llama3") {
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

  const nLayer = req("block_count");
  const nRot = opt("rope.dimension_count") ?? headDim;
  if (nRot % 2 !== 0 || nRot > headDim) fail(`rope.dimension_count ${nRot} does not fit a head of ${headDim}`);
  const shape = { nLayer, nEmbd, nHead, headDim };
  const graniteScale = (k: string, none: number) => (spec.graniteScales ? opt(k) || none : none);
  const qScale = spec.qPrescale?.(shape) ?? 1;

  return {
    arch: arch as string,
    nLayer,
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
    nRot,
    ropeAttnFactor: opt("rope.scaling.attn_factor") ?? 1,
    ropeThetaLocal: opt("rope.freq_base_swa") ?? (spec.swa?.localTheta === "same" ? opt("rope.freq_base") ?? 10000 : spec.swa?.localTheta ?? 10000),
    embedScale: spec.embedSqrt ? Math.sqrt(nEmbd) : graniteScale("embedding_scale", 1),
    qScale,
    kqScale: spec.qPrescale ? 1 : graniteScale("attention.scale", invSqrtF32(headDim)),
    attnSoftcap: spec.softcap ? opt("attn_logit_softcapping") ?? spec.softcap.attn : 0,
    finalSoftcap: spec.softcap ? opt("final_logit_softcapping") ?? spec.softcap.final : 0,
    logitScale: graniteScale("logit_scale", 1),
    residualScale: graniteScale("residual_scale", 1),
    ffnAct: spec.ffnAct ?? "silu",
    layers: layerHParams(spec, nLayer, md.get(key("attention.sliding_window_pattern")), opt("attention.sliding_window")),
  };
}

/** Each layer's window and RoPE table, as llama.cpp assigns them (llama_hparams::set_swa_pattern). */
function layerHParams(spec: ArchSpec, nLayer: number, patternValue: GGUFValue | undefined, windowKey: number | undefined): LayerHParams[] {
  const window = spec.swa ? windowKey ?? spec.swa.window : 0;
  const explicit = patternValue && typeof patternValue === "object" && "length" in patternValue ? Array.from(patternValue as ArrayLike<unknown>, Boolean) : null;
  const pattern = asNumber(patternValue) ?? spec.swa?.pattern ?? 0;
  return Array.from({ length: nLayer }, (_, l) => {
    const local = window > 0 && (explicit ? !!explicit[l] : pattern === 0 || l % pattern < pattern - 1);
    const noRope = spec.noRopeEvery !== undefined && (l + 1) % spec.noRopeEvery === 0;
    return { window: local ? window : 0, rope: noRope ? "none" : local ? "local" : "global" };
  });
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
