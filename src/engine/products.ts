// How one matrix product is dispatched: which kernel (float weights, or integer dots on Q8_0
// activations), which typed variant (rows per thread, tokens per tile, llama.cpp's summation
// order) and which grid, for a step of m tokens (or, for the output head, m sampled rows). Every
// choice here only changes how the work is spread: each token's sums are made in the same order
// whatever the tile, so a sequence's numbers do not depend on what else runs in its step.

import {
  Q8DOT_SOURCES, Q8KDOT_SOURCES, Q8_BLOCK_WORDS, UNIFORM_X_BYTES, type Kernel, type KernelHost, type MatvecQ8Variant, type MatvecQ8kVariant, type MatvecVariant,
} from "./gpu/kernels.ts";
import { foldGroups } from "./gpu/dispatch.ts";
import { GGMLType } from "./model/types.ts";
import type { Matrix } from "./weights.ts";

/**
 * Tokens per workgroup tile of a step's products (a prompt chunk, or the decode tokens of many
 * sequences), by kernel and, for the integer-dot kernel,
 * by ORDER. It loads a block's weights once for its tile, but each token keeps its accumulators
 * live: with llama.cpp's eight per row (ORDER 0) tiles of 2 ran stories15M q8_0's 64-token
 * products in 0.66-0.74x the time of tiles of 8 on lavapipe (with Q8_TILING; tiles of 3 or 4
 * slower than 2, of 1 about as slow as 8), and its prompts 432 -> 561 tok/s; with one (ORDER 1,
 * repacked Q4_0) tiles of 8 stay best (q4_0 prompts 700 tok/s, 640 with tiles of 4). The float
 * kernel keeps one sum per token and dequantizes a chunk once per tile: the larger the better
 * (stories15M f32 prompts 415 tok/s in tiles of 8, 623 of 16, 665 of 32, 687 of 64; a random
 * Q4_K model's 183 -> 250 with 32, which keeps a GPU's registers within reason).
 */
export const PREFILL_TILE = { float: 32, q8: { 0: 2, 1: 8 } } as const;
/**
 * How an integer-dot product (matvec_q8.wgsl) spreads its rows: [rows per thread (RPT), threads
 * per workgroup (RPW)], by where its activations come from and, for the uniform buffer, by MODE.
 * Two rows a thread share each activation load: from a storage buffer 1.21x faster on lavapipe;
 * from the uniform buffer, with rows read a quad at a time, 0.81x the time of one row a thread
 * for stories15M's 864-row qkv, and with 32-thread workgroups (less of a last group idle)
 * 0.83-0.85x for its 288-row products; the gate and up rows (MODE 2) are two rows a thread
 * already: 1.25x slower so (1.46x in tiles of two tokens).
 */
const Q8_TILING = {
  storage: [2, 64],
  uniform: { 0: [2, 32], 1: [2, 32], 2: [1, 64] },
} as const satisfies { storage: readonly [number, number]; uniform: Record<0 | 1 | 2, readonly [number, number]> };
/**
 * The output head when it need not be exact (ForwardOptions.exactHead off): its logits only feed
 * the sampler, so each row keeps one accumulator (a block's eight integer sums added exactly,
 * then one multiply-add: matvec_q8.wgsl ORDER 1) instead of llama.cpp's eight, and with the
 * registers that frees a thread computes two rows: stories15M's 32000 x 288 head in 0.87x the
 * time of one row and eight accumulators on lavapipe. For several rows (a batched step's sampled
 * rows) a thread takes four rows, so that each activation load serves four, in tiles of 8 rows,
 * or of 16 past 8: stories15M q8_0 decoding 16 sequences at once in 0.93x the CPU time of two
 * rows in tiles of 8 (8 sequences: 0.95x; tiles of 16 there 0.99x, of 32 for 16 no better).
 */
const FAST_HEAD = { order: 1, oneRow: [2, 64], rows: [4, 64] } as const;

/** The fast head's [rows per thread, threads per workgroup] and rows per tile for m sampled rows. */
function fastHeadShape(m: number): { tiling: readonly [number, number]; tile: number } {
  if (m <= 1) return { tiling: FAST_HEAD.oneRow, tile: 1 };
  return { tiling: FAST_HEAD.rows, tile: m <= 8 ? 8 : 16 };
}
/**
 * Matvec tiling, every weight format: [threads per row, rows per workgroup]. A row per invocation
 * needs no workgroup reduction and reads each activation at an address all threads share: on
 * lavapipe Q8_0 and Q4_0 (aligned rows, quant.ts `toGpuRows`) ran 1.5-2x faster than 2 x 32
 * and F32 1.4x faster than 4 x 16 (stories15M decode 11.8 -> 16.8 tok/s; its greedy run still
 * equals llama.cpp's, the one near-tie flip at the same token with a 4e-4 logit gap), and the
 * K-quants read in place 1.13x faster than 2 x 32 (a 512 x 6-layer Q4_K_M-like model).
 */
export const MATVEC_TILING: [number, number] = [1, 64];
/**
 * Which of llama.cpp's CPU kernels a Q8_0-activation product reproduces (matvec_q8.wgsl ORDER):
 * its x86 backend repacks Q4_0 and IQ4_NL matrices whose rows come in groups of 8 (all but the
 * token embedding, which it also looks rows up in) and runs them block by block (1, one kernel
 * template for both); everything else goes through the eight-lane vec_dot / tinyBLAS order (0).
 */
const REPACKED = new Set<GGMLType>([GGMLType.Q4_0, GGMLType.IQ4_NL]);
export function q8DotOrder(mat: Pick<Matrix, "type" | "n" | "name">): 0 | 1 {
  const repacked = REPACKED.has(mat.type) && mat.n % 8 === 0 && !mat.name.includes("token_embd");
  return repacked ? 1 : 0;
}

/** What a product site is: its matrix, its mode, and whether it is the output head. */
export interface ProductShape {
  mat: Pick<Matrix, "type" | "n" | "k" | "name">;
  mode: 0 | 1 | 2;
  /** Floats between tokens in the activations read (f32 products). */
  xStride: number;
  bias: boolean;
  /** The output head: its rows are the step's sampled rows; fast unless `exact`. */
  head?: { exact: boolean };
  /** Q8_0 activations and integer dots (the matrix's format has them and they are on). */
  q8: boolean;
  /** Q8_K activation blocks and integer dots in llama.cpp's order (exactQ8K). */
  q8k?: boolean;
}

export type ProductKernel =
  | { kind: "float"; name: "matvec" | "matvec_uniform"; variant: MatvecVariant }
  | { kind: "q8"; name: "matvec_q8" | "matvec_q8_uniform"; variant: MatvecQ8Variant }
  | { kind: "q8k"; name: "matvec_q8k"; variant: MatvecQ8kVariant };

/** Whether products with this matrix can run on Q8_0-quantized activations. */
export function hasQ8Dot(mat: { type: GGMLType; k: number }): boolean {
  return Q8DOT_SOURCES[mat.type] !== undefined && mat.k % 32 === 0;
}

/**
 * The formats llama.cpp multiplies with Q8_K activations (its K-quant vec_dots): their products
 * read the activations after a round trip through Q8_K (shaders/quantize_q8k.wgsl).
 */
const Q8K_FORMATS = new Set<GGMLType>([GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K, GGMLType.IQ4_XS]);

export function takesQ8K(mat: { type: GGMLType; k: number }): boolean {
  return Q8K_FORMATS.has(mat.type) && mat.k % 256 === 0;
}

/**
 * When a K-quant product reproduces llama.cpp's integer dots on Q8_K blocks (matvec_q8k.wgsl),
 * by format: where llama.cpp runs the kernel the format's piece reproduces. Its x86 backend
 * repacks Q4_K matrices whose rows come in groups of 8 (not the token embedding, which it also
 * looks rows up in) and runs every Q6_K product through ggml_vec_dot_q6_K_q8_K. The other
 * K-quant products stay float sums over Q8_K-rounded activations.
 */
const Q8K_EXACT: Partial<Record<GGMLType, (mat: Pick<Matrix, "n" | "name">) => boolean>> = {
  [GGMLType.Q4_K]: (mat) => mat.n % 8 === 0 && !mat.name.includes("token_embd"),
  [GGMLType.Q6_K]: () => true,
};

export function exactQ8K(mat: Pick<Matrix, "type" | "n" | "k" | "name">): boolean {
  return Q8KDOT_SOURCES[mat.type] !== undefined && takesQ8K(mat) && (Q8K_EXACT[mat.type]?.(mat) ?? false);
}

/** Bytes of activations one token (or row) of the product reads. */
function activationBytes(p: ProductShape): number {
  if (p.q8) return 4 * Q8_BLOCK_WORDS * (p.mat.k / 32);
  return p.xStride % 4 === 0 ? 4 * p.xStride : Infinity;
}

/** Whether an m-token step's activations fit a uniform binding (kernels.ts UNIFORM_X_BYTES). */
export function uniformActivations(p: ProductShape, m: number): boolean {
  return activationBytes(p) * Math.max(1, m) <= UNIFORM_X_BYTES;
}

/** The kernel and variant of an m-token (or m-row) step. */
export function productKernel(p: ProductShape, m: number): ProductKernel {
  if (p.q8k) return { kind: "q8k", name: "matvec_q8k", variant: { format: p.mat.type, mode: p.mode, bias: p.bias, tileTokens: 1 } };
  const uniform = uniformActivations(p, m);
  const single = m <= 1;
  if (!p.q8) {
    const [threadsPerRow, rowsPerGroup] = MATVEC_TILING;
    const variant: MatvecVariant = {
      format: p.mat.type, threadsPerRow, rowsPerGroup, tileTokens: single ? 1 : PREFILL_TILE.float, mode: p.mode, bias: p.bias,
    };
    return { kind: "float", name: uniform ? "matvec_uniform" : "matvec", variant };
  }
  const fast = p.head !== undefined && !p.head.exact;
  const order = fast ? FAST_HEAD.order : q8DotOrder(p.mat);
  const shape = fast
    ? fastHeadShape(m)
    : { tiling: uniform ? Q8_TILING.uniform[p.mode] : Q8_TILING.storage, tile: single ? 1 : PREFILL_TILE.q8[order] };
  const [rowsPerThread, threadsPerGroup] = shape.tiling;
  const tileTokens = shape.tile;
  const variant: MatvecQ8Variant = {
    format: p.mat.type, rowsPerThread, threadsPerGroup, tileTokens, mode: p.mode, order,
    bias: p.bias, nativeFma: fast,
  };
  return { kind: "q8", name: uniform ? "matvec_q8_uniform" : "matvec_q8", variant };
}

/** The pipeline of a product kernel (one call per family, so each gets its own variant type). */
export function productPipeline(host: KernelHost, k: ProductKernel): Kernel {
  if (k.kind === "q8k") return host.get(k.name, k.variant);
  return k.kind === "float" ? host.get(k.name, k.variant) : host.get(k.name, k.variant);
}

/** Rows each workgroup of a variant covers. */
function rowsPerGroup(k: ProductKernel): number {
  if (k.kind === "q8k") return 64;
  return k.kind === "float" ? k.variant.rowsPerGroup : k.variant.rowsPerThread * k.variant.threadsPerGroup;
}

/** The grid of an m-token step over `rows` output rows: rows folded over x and y, token tiles along z. */
export function productGrid(k: ProductKernel, rows: number, m: number): [number, number, number] {
  const [x, y] = foldGroups(Math.ceil(rows / rowsPerGroup(k)));
  return [x, y, Math.ceil(Math.max(1, m) / k.variant.tileTokens)];
}
