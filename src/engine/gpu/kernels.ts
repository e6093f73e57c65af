// The kernel host: a table of kernel variants (op x weight format x feature fallback) mapped to
// WGSL sources, template constants and binding layouts, and a pipeline cache over it.

import bytesSrc from "../../../shaders/bytes.wgsl" with { type: "text" };
import f32Src from "../../../shaders/weights/f32.wgsl" with { type: "text" };
import f16Src from "../../../shaders/weights/f16.wgsl" with { type: "text" };
import bf16Src from "../../../shaders/weights/bf16.wgsl" with { type: "text" };
import q8_0Src from "../../../shaders/weights/q8_0.wgsl" with { type: "text" };
import q4_0Src from "../../../shaders/weights/q4_0.wgsl" with { type: "text" };
import nibblesSrc from "../../../shaders/weights/nibbles.wgsl" with { type: "text" };
import q4_1Src from "../../../shaders/weights/q4_1.wgsl" with { type: "text" };
import q5_0Src from "../../../shaders/weights/q5_0.wgsl" with { type: "text" };
import q5_1Src from "../../../shaders/weights/q5_1.wgsl" with { type: "text" };
import iq4_nlSrc from "../../../shaders/weights/iq4_nl.wgsl" with { type: "text" };
import kScalesSrc from "../../../shaders/weights/k_scales.wgsl" with { type: "text" };
import q2_kSrc from "../../../shaders/weights/q2_k.wgsl" with { type: "text" };
import q3_kSrc from "../../../shaders/weights/q3_k.wgsl" with { type: "text" };
import q4_kSrc from "../../../shaders/weights/q4_k.wgsl" with { type: "text" };
import q5_kSrc from "../../../shaders/weights/q5_k.wgsl" with { type: "text" };
import q6_kSrc from "../../../shaders/weights/q6_k.wgsl" with { type: "text" };
import iq4_xsSrc from "../../../shaders/weights/iq4_xs.wgsl" with { type: "text" };
import q8_0DotSrc from "../../../shaders/weights/q8_0_dot.wgsl" with { type: "text" };
import q4_0DotSrc from "../../../shaders/weights/q4_0_dot.wgsl" with { type: "text" };
import q4_1DotSrc from "../../../shaders/weights/q4_1_dot.wgsl" with { type: "text" };
import q5_0DotSrc from "../../../shaders/weights/q5_0_dot.wgsl" with { type: "text" };
import q5_1DotSrc from "../../../shaders/weights/q5_1_dot.wgsl" with { type: "text" };
import iq4_nlDotSrc from "../../../shaders/weights/iq4_nl_dot.wgsl" with { type: "text" };
import chunkDotSrc from "../../../shaders/weights/chunk_dot.wgsl" with { type: "text" };
import matvecSrc from "../../../shaders/matvec.wgsl" with { type: "text" };
import matvecQ8Src from "../../../shaders/matvec_q8.wgsl" with { type: "text" };
import quantizeQ8Src from "../../../shaders/quantize_q8.wgsl" with { type: "text" };
import quantizeQ8kSrc from "../../../shaders/quantize_q8k.wgsl" with { type: "text" };
import matvecQ8kSrc from "../../../shaders/matvec_q8k.wgsl" with { type: "text" };
import q4_kDotSrc from "../../../shaders/weights/q4_k_dot.wgsl" with { type: "text" };
import q6_kDotSrc from "../../../shaders/weights/q6_k_dot.wgsl" with { type: "text" };
import embedSrc from "../../../shaders/embed.wgsl" with { type: "text" };
import rmsnormSrc from "../../../shaders/rmsnorm.wgsl" with { type: "text" };
import rmsnormLanesSrc from "../../../shaders/rmsnorm_lanes.wgsl" with { type: "text" };
import rmsnormCommonSrc from "../../../shaders/rmsnorm_common.wgsl" with { type: "text" };
import ropeSrc from "../../../shaders/rope.wgsl" with { type: "text" };
import attentionSrc from "../../../shaders/attention.wgsl" with { type: "text" };
import attentionLanesSrc from "../../../shaders/attention_lanes.wgsl" with { type: "text" };
import attentionScoreSrc from "../../../shaders/attention_score.wgsl" with { type: "text" };
import sampleSrc from "../../../shaders/sample.wgsl" with { type: "text" };
import samplePartialSrc from "../../../shaders/sample_partial.wgsl" with { type: "text" };
import gluMulSrc from "../../../shaders/glu_mul.wgsl" with { type: "text" };
import logitCapSrc from "../../../shaders/logit_cap.wgsl" with { type: "text" };
import addSrc from "../../../shaders/add.wgsl" with { type: "text" };
import reduceSharedSrc from "../../../shaders/reduce_shared.wgsl" with { type: "text" };
import reduceSubgroupSrc from "../../../shaders/reduce_subgroup.wgsl" with { type: "text" };
import lanesPlainSrc from "../../../shaders/lanes_plain.wgsl" with { type: "text" };
import lanesSubgroupSrc from "../../../shaders/lanes_subgroup.wgsl" with { type: "text" };
import exactSrc from "../../../shaders/exact.wgsl" with { type: "text" };
import q8BlockSrc from "../../../shaders/q8_block.wgsl" with { type: "text" };
import stepSrc from "../../../shaders/step.wgsl" with { type: "text" };
import pagesSrc from "../../../shaders/pages.wgsl" with { type: "text" };
import maskLogitsSrc from "../../../shaders/mask_logits.wgsl" with { type: "text" };
import topLogprobsSrc from "../../../shaders/top_logprobs.wgsl" with { type: "text" };
import { GGMLType } from "../model/types.ts";
import type { FfnActivation } from "../model/hparams.ts";
import { rowGroup, rowUnit } from "../quant.ts";
import { featuresOf, type GpuFeatures } from "./device.ts";
import { EXACT_CONSTANTS } from "./exact.ts";

/** How a kernel sees each binding, in binding order. */
type Binding = "read" | "rw" | "uniform";

/** Template constants of a kernel source (`{{NAME}}`). */
type Consts = Record<string, string | number | boolean>;

interface KernelSpec<V> {
  /** The kernel's own source; prepended parts come from `weights` / `reduce`. */
  source: string;
  bindings: Binding[];
  /**
   * Reads weights in a stored format (the variant's `format`): gets the byte helpers and that
   * format's `load_chunk` ("float": dequantize to f32), its block words for integer dots with
   * Q8_0 activations ("q8dot"), or its pieces for integer dots on Q8_K blocks ("q8kdot").
   */
  weights?: "float" | "q8dot" | "q8kdot";
  /** Uses workgroup reductions (gets the subgroup or the shared-memory variant). */
  reduce?: boolean;
  /** Shares loads across a SIMD group (gets lanes_subgroup.wgsl or lanes_plain.wgsl). */
  lanes?: boolean;
  /** Reads/writes the KV cache (f16 storage when shader-f16 is on) through the page table (pages.wgsl). */
  kv?: boolean;
  /** Uses the exact-arithmetic helpers (shaders/exact.wgsl). */
  exact?: boolean;
  /** Writes Q8_0 activation blocks (shaders/q8_block.wgsl). */
  q8Blocks?: boolean;
  /** Reads the step (shaders/step.wgsl: its tokens and sampled rows). */
  step?: boolean;
  /** Pieces a kernel family shares (its bindings, a common step), filled like the source. */
  include?: string[];
  /** The variant's template constants, in a fixed order (they also make the pipeline's key). */
  consts?: (v: V) => Consts;
}

/** The typed choices that make one compiled variant, per kernel family. */
export interface MatvecVariant {
  format: GGMLType;
  /** Threads sharing a row (TPR) and rows per workgroup (RPW). */
  threadsPerRow: number;
  rowsPerGroup: number;
  /** Tokens per workgroup tile (TT). */
  tileTokens: number;
  /** 0 stores, 1 adds into Y (the residual), 2 gate and up rows into silu(gate) * up. */
  mode: 0 | 1 | 2;
  bias: boolean;
}
export interface MatvecQ8Variant {
  format: GGMLType;
  /** Rows per thread (RPT) and threads per workgroup (RPW). */
  rowsPerThread: number;
  threadsPerGroup: number;
  tileTokens: number;
  mode: 0 | 1 | 2;
  /** Which of llama.cpp's kernels the sums reproduce (matvec_q8.wgsl ORDER). */
  order: 0 | 1;
  bias: boolean;
  /** The device's own fma() instead of the exact emulation (the fast output head). */
  nativeFma: boolean;
}
export interface MatvecQ8kVariant {
  format: GGMLType;
  mode: 0 | 1 | 2;
  bias: boolean;
  /** Always one: a workgroup's threads are rows of one token. */
  tileTokens: 1;
}
export interface FormatVariant { format: GGMLType }
export interface NormVariant {
  /** Normalizes Y in place (qwen3's q/k heads) instead of X into Y. */
  inPlace: boolean;
  /** Also writes the Q8_0 blocks of the result for the product that reads it. */
  q8Out: boolean;
}
export interface AttentionVariant {
  /** Quads of head dimensions per thread (VQ). */
  quadsPerThread: 1 | 2;
}
export interface AttentionLanesVariant { headDim: number }
export interface GluVariant { act: FfnActivation }
type NoVariant = Record<never, never>;

export interface KernelVariants {
  matvec: MatvecVariant;
  matvec_uniform: MatvecVariant;
  matvec_q8: MatvecQ8Variant;
  matvec_q8_uniform: MatvecQ8Variant;
  quantize_q8: NoVariant;
  quantize_q8k: NoVariant;
  matvec_q8k: MatvecQ8kVariant;
  embed: FormatVariant;
  rmsnorm: NormVariant;
  rmsnorm_lanes: NormVariant;
  rope: NoVariant;
  attention: AttentionVariant;
  attention_lanes: AttentionLanesVariant;
  sample_partial: NoVariant;
  sample: NoVariant;
  mask_logits: NoVariant;
  top_logprobs: NoVariant;
  glu_mul: GluVariant;
  logit_cap: NoVariant;
  add: NoVariant;
}

export type KernelName = keyof KernelVariants;

/**
 * Workgroups (of 256 threads) in the sampler's first pass: 2048 partials, 16 logits per thread
 * for a 32000-token vocabulary; the final pass reads 8 partials per thread.
 */
export const SAMPLE_GROUPS = 8;

/** The most alternatives a sampled row reports (top_logprobs.wgsl; the API allows 0 to 20). */
export const MAX_TOP_LOGPROBS = 20;

/**
 * Words per Q8_0 activation block in XQ (shaders/q8_block.wgsl): 8 of packed int8, the scale,
 * and the Q8_1 sum (d * the sum of the quants, as f16) that the products with a min use.
 */
export const Q8_BLOCK_WORDS = 10;

/**
 * Where the matrix products read their activations (binding 1). Every thread of a row-per-thread
 * product reads the same activation words; on lavapipe such a load from a storage buffer is still
 * a loop over the SIMD lanes with a bounds-checked branch each, from a uniform buffer a
 * branch-free gather (stories15M q8_0's output head: 0.85-0.9x the time; prompts 1.1x faster).
 * A uniform binding holds 64 KB: a step uses it when its activations fit (Q8_0 blocks of one
 * token: K below 58 000; of a 64-token step: K up to 900; f32 rows: K up to 16 384 for one
 * token), else the storage form.
 */
export const UNIFORM_X_BYTES = 65536;
const XQ_FROM = {
  storage: "@group(0) @binding(1) var<storage, read> XQ: array<u32>;\nfn xq_word(i: u32) -> u32 { return XQ[i]; }",
  uniform: `@group(0) @binding(1) var<uniform> XQ: array<vec4<u32>, ${UNIFORM_X_BYTES / 16}>;\nfn xq_word(i: u32) -> u32 { return XQ[i >> 2u][i & 3u]; }`,
};
const X_FROM = {
  storage: "@group(0) @binding(1) var<storage, read> X: array<f32>;\nfn x_quad(i: u32) -> vec4<f32> { return vec4<f32>(X[i], X[i + 1u], X[i + 2u], X[i + 3u]); }",
  uniform: `@group(0) @binding(1) var<uniform> X: array<vec4<f32>, ${UNIFORM_X_BYTES / 16}>;\nfn x_quad(i: u32) -> vec4<f32> { return X[i >> 2u]; }`,
};
const MATVEC_BINDINGS = (x: Binding): Binding[] => ["read", x, "rw", "read", "read", "uniform"];
const matvecConsts = (x: keyof typeof X_FROM) => (v: MatvecVariant): Consts => ({
  TPR: v.threadsPerRow, RPW: v.rowsPerGroup, TT: v.tileTokens, MODE: v.mode, HAS_BIAS: v.bias, X_FROM: X_FROM[x],
});
const matvecQ8Consts = (x: keyof typeof XQ_FROM) => (v: MatvecQ8Variant): Consts => ({
  RPW: v.threadsPerGroup, RPT: v.rowsPerThread, TT: v.tileTokens, MODE: v.mode, ORDER: v.order, HAS_BIAS: v.bias,
  NATIVE_FMA: v.nativeFma, XQ_FROM: XQ_FROM[x],
});
const normConsts = (v: NormVariant): Consts => ({ SRC: v.inPlace ? "Y" : "X", Q8_OUT: v.q8Out });
const NORM_BINDINGS: Binding[] = ["read", "rw", "read", "read", "uniform", "rw"];
const ATTENTION_BINDINGS: Binding[] = ["read", "read", "read", "rw", "read", "uniform", "read"];
const SAMPLER_CONSTS = () => ({ GROUPS: SAMPLE_GROUPS });

export const KERNELS: { [N in KernelName]: KernelSpec<KernelVariants[N]> } = {
  matvec: { source: matvecSrc, weights: "float", lanes: true, step: true, bindings: MATVEC_BINDINGS("read"), consts: matvecConsts("storage") },
  /** matvec with its activations in a uniform buffer (rows of a multiple of 4 that fit UNIFORM_X_BYTES). */
  matvec_uniform: { source: matvecSrc, weights: "float", lanes: true, step: true, bindings: MATVEC_BINDINGS("uniform"), consts: matvecConsts("uniform") },
  matvec_q8: { source: matvecQ8Src, weights: "q8dot", exact: true, lanes: true, step: true, bindings: MATVEC_BINDINGS("read"), consts: matvecQ8Consts("storage") },
  /** matvec_q8 with its activations in a uniform buffer (steps whose Q8_0 blocks fit UNIFORM_X_BYTES). */
  matvec_q8_uniform: { source: matvecQ8Src, weights: "q8dot", exact: true, lanes: true, step: true, bindings: MATVEC_BINDINGS("uniform"), consts: matvecQ8Consts("uniform") },
  quantize_q8: { source: quantizeQ8Src, exact: true, q8Blocks: true, bindings: ["read", "rw", "uniform"] },
  quantize_q8k: { source: quantizeQ8kSrc, exact: true, bindings: ["read", "rw", "uniform", "rw"] },
  matvec_q8k: { source: matvecQ8kSrc, weights: "q8kdot", exact: true, step: true, bindings: MATVEC_BINDINGS("read"), consts: (v) => ({ MODE: v.mode, HAS_BIAS: v.bias }) },
  embed: { source: embedSrc, weights: "float", step: true, bindings: ["read", "read", "read", "rw", "uniform"] },
  rmsnorm: { source: rmsnormSrc, include: [rmsnormCommonSrc], exact: true, q8Blocks: true, step: true, bindings: NORM_BINDINGS, consts: normConsts },
  /** rmsnorm as one SIMD group per (group, token), for adapters that run on the CPU. */
  rmsnorm_lanes: { source: rmsnormLanesSrc, include: [rmsnormCommonSrc], exact: true, q8Blocks: true, step: true, bindings: NORM_BINDINGS, consts: normConsts },
  rope: { source: ropeSrc, kv: true, exact: true, step: true, bindings: ["rw", "rw", "rw", "read", "read", "uniform", "read"] },
  attention: { source: attentionSrc, include: [attentionScoreSrc], kv: true, exact: true, step: true, bindings: ATTENTION_BINDINGS, consts: (v) => ({ VQ: v.quadsPerThread }) },
  /** attention as one SIMD group per (head, token), for adapters that run on the CPU. */
  attention_lanes: { source: attentionLanesSrc, include: [attentionScoreSrc], kv: true, exact: true, step: true, bindings: ATTENTION_BINDINGS, consts: (v) => ({ HEAD_DIM: v.headDim }) },
  sample_partial: { source: samplePartialSrc, step: true, bindings: ["read", "rw", "uniform", "read"], consts: SAMPLER_CONSTS },
  sample: { source: sampleSrc, reduce: true, step: true, bindings: ["read", "rw", "rw", "read", "uniform", "read"], consts: SAMPLER_CONSTS },
  mask_logits: { source: maskLogitsSrc, step: true, bindings: ["rw", "read", "uniform", "read"] },
  top_logprobs: { source: topLogprobsSrc, reduce: true, step: true, bindings: ["read", "rw", "read", "uniform", "read"], consts: () => ({ GROUPS: SAMPLE_GROUPS, MAX_TOP: MAX_TOP_LOGPROBS }) },
  glu_mul: { source: gluMulSrc, exact: true, bindings: ["read", "rw", "uniform", "read"], consts: (v) => ({ ACT: v.act === "gelu" ? 1 : 0 }) },
  logit_cap: { source: logitCapSrc, bindings: ["rw", "uniform"] },
  add: { source: addSrc, bindings: ["read", "rw", "uniform"] },
};

/** Whether the one-SIMD-group kernel forms (`*_lanes`) run here: a CPU adapter with subgroups of 8+. */
function oneGroupForms(features: GpuFeatures): boolean {
  return features.cpuLanes && features.wideSubgroups;
}

/**
 * The RMSNorm kernel on this host: one SIMD group per (group, token) on a CPU adapter with
 * subgroups of 8 or more (rmsnorm_lanes.wgsl), else a workgroup of 64.
 */
export function normKernel(host: KernelHost, variant: NormVariant): Kernel {
  return oneGroupForms(host.features) ? host.get("rmsnorm_lanes", variant) : host.get("rmsnorm", variant);
}

/**
 * The attention kernel for a head size on this host: on a CPU adapter with subgroups of 8 or more,
 * one SIMD group per (head, token) (attention_lanes.wgsl, compiled per head size); elsewhere a
 * workgroup of 64 whose threads accumulate eight head dimensions where the size allows it, else four.
 */
export function attentionKernel(host: KernelHost, headDim: number): Kernel {
  if (oneGroupForms(host.features)) return host.get("attention_lanes", { headDim });
  return host.get("attention", { quadsPerThread: headDim % 8 === 0 ? 2 : 1 });
}

/**
 * load_chunk (and, where specialised, chunk_dot) implementations per stored weight format, with
 * the pieces they share (the nibble formats' plane helpers, the K-quants' 6-bit scales).
 */
export const WEIGHT_SOURCES: Partial<Record<GGMLType, string>> = {
  [GGMLType.F32]: f32Src,
  [GGMLType.F16]: f16Src,
  [GGMLType.BF16]: bf16Src,
  [GGMLType.Q8_0]: q8_0Src,
  [GGMLType.Q4_0]: q4_0Src,
  [GGMLType.Q4_1]: nibblesSrc + q4_1Src,
  [GGMLType.Q5_0]: nibblesSrc + q5_0Src,
  [GGMLType.Q5_1]: nibblesSrc + q5_1Src,
  [GGMLType.IQ4_NL]: nibblesSrc + iq4_nlSrc,
  [GGMLType.Q2_K]: q2_kSrc,
  [GGMLType.Q3_K]: q3_kSrc,
  [GGMLType.Q4_K]: kScalesSrc + q4_kSrc,
  [GGMLType.Q5_K]: kScalesSrc + q5_kSrc,
  [GGMLType.Q6_K]: q6_kSrc,
  [GGMLType.IQ4_XS]: iq4_xsSrc,
};

/** How bytes.wgsl declares and reads the weight binding, by the rows' interleave unit (quant.ts `rowUnit`). */
const WEIGHT_WORDS = {
  1: { ROW_UNIT: 1, W_ELEM: "u32", W_WORD: "W[i]", ROW_QUAD: "vec4<u32>(row_word(rb, 4u * q), row_word(rb, 4u * q + 1u), row_word(rb, 4u * q + 2u), row_word(rb, 4u * q + 3u))" },
  4: { ROW_UNIT: 4, W_ELEM: "vec4<u32>", W_WORD: "W[i >> 2u][i & 3u]", ROW_QUAD: "W[(rb >> 4u) + q * ROW_GROUP]" },
} as const;

/**
 * block_words / dot_scale / dot_min implementations: the formats whose products run on Q8_0
 * (Q8_1: with its sums) activations with integer dots, as llama.cpp's CPU kernels for them do
 * (the K-quants' kernels work on Q8_K blocks instead: they keep f32 activations here).
 */
export const Q8DOT_SOURCES: Partial<Record<GGMLType, string>> = {
  [GGMLType.Q8_0]: q8_0DotSrc,
  [GGMLType.Q4_0]: q4_0DotSrc,
  [GGMLType.Q4_1]: nibblesSrc + q4_1Src + q4_1DotSrc,
  [GGMLType.Q5_0]: nibblesSrc + q5_0Src + q5_0DotSrc,
  [GGMLType.Q5_1]: nibblesSrc + q5_1Src + q5_1DotSrc,
  [GGMLType.IQ4_NL]: nibblesSrc + iq4_nlSrc + iq4_nlDotSrc,
};

/**
 * The K-quant formats whose products reproduce llama.cpp's integer dots on Q8_K blocks
 * (matvec_q8k.wgsl), each in the order of the x86 kernel llama.cpp runs for it (products.ts
 * exactQ8K says when).
 */
export const Q8KDOT_SOURCES: Partial<Record<GGMLType, string>> = {
  [GGMLType.Q4_K]: kScalesSrc + q4_kDotSrc,
  [GGMLType.Q6_K]: q6_kDotSrc,
};

/** Feature-dependent template pieces: [feature on, fallback]. */
const FEATURE_TEMPLATES = {
  subgroups: {
    on: { REDUCE: reduceSubgroupSrc, SG_ARGS: ", @builtin(subgroup_invocation_id) sg_lane_in: u32, @builtin(subgroup_size) sg_size_in: u32", SG_INIT: "reduce_init_sg(sg_lane_in, sg_size_in);" },
    off: { REDUCE: reduceSharedSrc, SG_ARGS: "", SG_INIT: "" },
  },
  wideSubgroups: {
    on: { LANES: lanesSubgroupSrc, LANES_ARGS: ", @builtin(subgroup_invocation_id) lanes_id_in: u32", LANES_INIT: "lanes_init(lanes_id_in);" },
    off: { LANES: lanesPlainSrc, LANES_ARGS: "", LANES_INIT: "" },
  },
  shaderF16: {
    on: { ENABLE_F16: "enable f16;", KV: "f16", KV_QUAD: "vec2<u32>", KV_UNPACK: "vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y))", KV_PAIR: "u32", KV_PAIR_UNPACK: "unpack2x16float(w)" },
    off: { ENABLE_F16: "", KV: "f32", KV_QUAD: "vec4<f32>", KV_UNPACK: "w", KV_PAIR: "vec2<f32>", KV_PAIR_UNPACK: "w" },
  },
} as const;

/** shaders/exact.wgsl with its constants filled in (exported for tests of the helpers alone). */
export function exactSource(fusedFma: boolean): string {
  return fill(exactSrc, { ...EXACT_CONSTANTS, FUSED_FMA: fusedFma });
}

/**
 * The shape every step-reading kernel is compiled for (shaders/step.wgsl, pages.wgsl): the most
 * tokens and sampled rows one step holds, the KV page size and the page-table row length.
 */
export interface StepShape {
  maxTokens: number;
  maxRows: number;
  pageSize: number;
  pagesPerSeq: number;
}

/** For kernels run outside a model (tests): room for 64 tokens, 16 rows, contexts of 1024. */
export const DEFAULT_STEP_SHAPE: StepShape = { maxTokens: 64, maxRows: 16, pageSize: 16, pagesPerSeq: 64 };

export interface Kernel {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  bindings: readonly Binding[];
}

function fill(template: string, values: Record<string, string | number | boolean>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, k: string) => {
    if (!(k in values)) throw new Error(`kernel template constant ${k} has no value`);
    return String(values[k]);
  });
}

export class KernelHost {
  readonly features: GpuFeatures;
  private cache = new Map<string, Kernel>();
  private names = new Map<Kernel, KernelName>();

  /**
   * `features` may switch off what the device has, to exercise the fallbacks; `shape` is the
   * step the forward pass runs (tests of single kernels take the default).
   */
  constructor(readonly device: GPUDevice, features?: Partial<GpuFeatures>, readonly shape: StepShape = DEFAULT_STEP_SHAPE) {
    const has = featuresOf(device);
    this.features = {
      shaderF16: has.shaderF16 && (features?.shaderF16 ?? true),
      subgroups: has.subgroups && (features?.subgroups ?? true),
      wideSubgroups: has.wideSubgroups && (features?.subgroups ?? true) && (features?.wideSubgroups ?? true),
      cpuLanes: has.cpuLanes && (features?.cpuLanes ?? true),
      fusedFma: has.fusedFma && (features?.fusedFma ?? true),
    };
    if (shape.pageSize % 8 !== 0) throw new RangeError(`the KV page size must be a multiple of 8 (attention_lanes.wgsl reads 8 keys of one page at a time), got ${shape.pageSize}`);
  }

  /** The WGSL of one variant (exported for inspection and error messages). */
  source<N extends KernelName>(name: N, variant: KernelVariants[N]): string {
    const spec = KERNELS[name] as KernelSpec<KernelVariants[N]>;
    const values: Consts = {
      Q8_BLOCK_WORDS,
      MAX_STEP_TOKENS: this.shape.maxTokens,
      MAX_STEP_ROWS: this.shape.maxRows,
      PAGE_SIZE: this.shape.pageSize,
      PAGES_PER_SEQ: this.shape.pagesPerSeq,
      ...FEATURE_TEMPLATES.subgroups[this.features.subgroups ? "on" : "off"],
      ...FEATURE_TEMPLATES.wideSubgroups[this.features.wideSubgroups ? "on" : "off"],
      ...FEATURE_TEMPLATES.shaderF16[this.features.shaderF16 ? "on" : "off"],
      ...spec.consts?.(variant),
    };
    const parts = [fill(spec.source, values), ...(spec.include ?? []).map((p) => fill(p, values))];
    if (spec.step) parts.push(fill(stepSrc, values));
    if (spec.kv) parts.push(fill(pagesSrc, values));
    if (spec.weights) {
      const format = (variant as Partial<FormatVariant>).format;
      if (format === undefined) throw new Error(`kernel ${name} needs a weight format`);
      const w = { q8dot: Q8DOT_SOURCES, q8kdot: Q8KDOT_SOURCES, float: WEIGHT_SOURCES }[spec.weights][format];
      if (!w) throw new Error(`kernel ${name}: weight format ${GGMLType[format] ?? format} is not supported`);
      parts.push(fill(bytesSrc, { ROW_GROUP: rowGroup(format), ...WEIGHT_WORDS[rowUnit(format)] }), w);
      // The generic decode dot, unless the format brings its own.
      if (spec.weights === "float" && !/\bfn chunk_dot\b/.test(w)) parts.push(chunkDotSrc);
    }
    if (spec.reduce) parts.push(String(values.REDUCE));
    if (spec.lanes) parts.push(String(values.LANES));
    if (spec.exact) parts.push(exactSource(this.features.fusedFma));
    if (spec.q8Blocks) parts.push(fill(q8BlockSrc, values));
    // directives (`enable`, `diagnostic`) must precede everything else in a module
    const all = parts.join("\n");
    const directive = /^(?:enable|diagnostic)\b[^;]*;/gm;
    const directives = [...new Set(all.match(directive) ?? [])];
    return directives.join("\n") + "\n" + all.replace(directive, "");
  }

  /** A variant's pipeline-cache key: the family, the weight format, then its constants in order. */
  static key<N extends KernelName>(name: N, variant: KernelVariants[N]): string {
    const spec = KERNELS[name] as KernelSpec<KernelVariants[N]>;
    const format = (variant as Partial<FormatVariant>).format;
    const consts = Object.entries(spec.consts?.(variant) ?? {}).filter(([k]) => k !== "X_FROM" && k !== "XQ_FROM");
    return `${name}[${format === undefined ? "" : GGMLType[format] + " "}${consts.map(([k, v]) => `${k}=${v}`).join(" ")}]`;
  }

  get<N extends KernelName>(name: N, ...args: keyof KernelVariants[N] extends never ? [] : [KernelVariants[N]]): Kernel {
    const variant = (args[0] ?? {}) as KernelVariants[N];
    const key = KernelHost.key(name, variant);
    let k = this.cache.get(key);
    if (k) return k;
    const spec = KERNELS[name] as KernelSpec<KernelVariants[N]>;
    const code = this.source(name, variant);
    const module = this.device.createShaderModule({ code, label: key });
    const layout = this.layoutFor(spec.bindings);
    const pipeline = this.device.createComputePipeline({
      label: key,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
    });
    k = { pipeline, layout, bindings: spec.bindings };
    this.cache.set(key, k);
    this.names.set(k, name);
    return k;
  }

  /** Which kernel a pipeline from `get` runs (profiling tables). */
  nameOf(kernel: Kernel): KernelName {
    const name = this.names.get(kernel);
    if (!name) throw new Error("kernel was not made by this host");
    return name;
  }

  // One layout per binding signature, so bind groups work with every variant of a kernel.
  private layouts = new Map<string, GPUBindGroupLayout>();
  private layoutFor(bindings: Binding[]): GPUBindGroupLayout {
    const key = bindings.join(",");
    let layout = this.layouts.get(key);
    if (!layout) {
      layout = this.device.createBindGroupLayout({
        label: key,
        entries: bindings.map((b, i) => ({
          binding: i,
          visibility: 4 /* GPUShaderStage.COMPUTE */,
          buffer: { type: b === "read" ? "read-only-storage" : b === "rw" ? "storage" : "uniform" },
        })),
      });
      this.layouts.set(key, layout);
    }
    return layout;
  }

  /** A bind group for any variant of `name` (bindings are the kernel's, not the variant's): compiles nothing. */
  bindTo(name: KernelName, buffers: GPUBuffer[]): GPUBindGroup {
    const bindings = KERNELS[name].bindings;
    return this.bindLayout(this.layoutFor(bindings), bindings, buffers);
  }

  bind(kernel: Kernel, buffers: GPUBuffer[]): GPUBindGroup {
    return this.bindLayout(kernel.layout, kernel.bindings, buffers);
  }

  /** Uniform bindings take at most the device's uniform binding size from the buffer's start. */
  private bindLayout(layout: GPUBindGroupLayout, bindings: readonly Binding[], buffers: GPUBuffer[]): GPUBindGroup {
    const maxUniform = this.device.limits.maxUniformBufferBindingSize;
    return this.device.createBindGroup({
      layout,
      entries: buffers.map((buffer, binding) => ({
        binding,
        resource: bindings[binding] === "uniform" && buffer.size > maxUniform ? { buffer, size: maxUniform } : { buffer },
      })),
    });
  }
}
