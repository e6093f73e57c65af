// The forward pass as a list of prepared dispatches ("sites"): built once per model from its
// layer recipe, with every buffer, bind group and parameter block allocated up front. A step
// runs any mix of sequences' tokens (prompt chunks and decode tokens): what it holds is in the
// step buffer on the GPU (shaders/step.wgsl, written by step.ts), so the same bind groups serve
// every step and encoding one only records dispatches into the caller's command encoder. The
// body runs over the step's tokens; the head (final norm, output matrix, logit mask, sampler)
// over its sampled rows, one per sequence that picks a token this step.

import type { HParams, LayerHParams } from "./model/hparams.ts";
import { llama3RopeFactors } from "./model/hparams.ts";
import { KernelHost, MAX_TOP_LOGPROBS, Q8_BLOCK_WORDS, SAMPLE_GROUPS, UNIFORM_X_BYTES, attentionKernel, normKernel, type Kernel, type StepShape } from "./gpu/kernels.ts";
import { storageBuffer, storageUniformBuffer, uploadF32 } from "./gpu/buffers.ts";
import {
  ATTENTION_PARAMS, EMBED_PARAMS, MASK_PARAMS, MATVEC_PARAMS, NORM_PARAMS, QUANTIZE_PARAMS, ROPE_PARAMS, SAMPLE_PARAMS,
  GLU_MUL_PARAMS, ADD_PARAMS, LOGIT_CAP_PARAMS, paramsBuffer, type ParamsLayout,
} from "./gpu/params.ts";
import { foldGroups } from "./gpu/dispatch.ts";
import { recipeFor, type Step } from "./recipe.ts";
import { MATVEC_TILING, exactQ8K, hasQ8Dot, takesQ8K, productGrid, productKernel, productPipeline, uniformActivations, type ProductShape } from "./products.ts";
import { GGMLType } from "./model/types.ts";
import type { Matrix, WeightUploader } from "./weights.ts";
import { MATH_TRIG, type Trig } from "./libc-math.ts";
import { STEP_BYTES } from "./step.ts";
import { kvElementBytes } from "./kv-cache.ts";
import { ggmlGeluTable } from "./gelu-table.ts";

export { MATVEC_TILING } from "./products.ts";

/**
 * The first matrix that reads each layer norm's output (decides whether the norm also writes
 * Q8_0 blocks): the first of these the file has (phi3 stores qkv and gate|up fused).
 */
const NORM_CONSUMER: Record<string, string[]> = { attn_norm: ["attn_q", "attn_qkv"], ffn_norm: ["ffn_gate", "ffn_up"] };

/** One vec4<u32> partial per thread of the sampler's first pass, per sampled row. */
const SAMPLE_PARTIALS_PER_ROW = 16 * 256 * SAMPLE_GROUPS;
/** Threads per workgroup of mask_logits.wgsl. */
const MASK_WG = 256;

/** Which count of the step a site's grid follows: its tokens (the body) or its sampled rows (the head). */
type Span = "tokens" | "rows";

interface Site {
  label: string;
  span: Span;
  /** The activation buffer this site quantized or consumed as Q8_0 (to skip re-quantizing). */
  q8src?: GPUBuffer;
  /** The same for the Q8_K round trip of the K-quant products. */
  q8ksrc?: GPUBuffer;
  /** The pipeline for an n-token (or n-row) step. */
  kernel: (n: number) => Kernel;
  /** The bind group for an n-token step (kernels whose activations move to a uniform binding). */
  bind: (n: number) => GPUBindGroup;
  grid: (n: number) => [number, number, number];
  /** Only in steps with a row that has a grammar mask / asks for top logprobs. */
  only?: "masked" | "top";
}

/** What the host writes before a step and reads after it (step.ts knows their layouts). */
export interface ForwardBuffers {
  /** The Step struct: tokens and sampled rows. */
  step: GPUBuffer;
  /** PAGES_PER_SEQ page ids per slot. */
  pageTable: GPUBuffer;
  /** The last token each slot's sampler picked (fed to its next step without a readback). */
  fed: GPUBuffer;
  /** Logits of each sampled row (maxRows x nVocab). */
  logits: GPUBuffer;
  /** (id, logprob bits) per sampled row. */
  out: GPUBuffer;
  /** MAX_TOP_LOGPROBS (id, logprob bits) per sampled row that asks (id 0xFFFFFFFF: no more). */
  top: GPUBuffer;
  /** Grammar masks, `maskWords` words per sampled row. */
  mask: GPUBuffer;
}

export interface ForwardOptions {
  /** Positions the RoPE table covers (the longest sequence). */
  nCtx: number;
  /** The step's capacity and the page geometry the kernels are compiled for. */
  shape: StepShape;
  /** Pages in each layer's K and V pools. */
  kvPages: number;
  /**
   * Encode each dispatch in its own compute pass, or (the default) all of a step's in one: with
   * lavapipe running dispatches inline, one pass costs stories15M q8_0 decode 0.95-0.98x the CPU
   * time (a pass per dispatch was cheaper when lavapipe ran them on its thread pool).
   */
  passPerDispatch?: boolean;
  /**
   * Quantize activations to Q8_0 for Q8_0/Q4_0 matrices and use integer dot products rounded
   * exactly as llama.cpp's CPU backend rounds them (the default). Off: dequantized weights times
   * f32 activations (the model's exact products, but not llama.cpp's numbers).
   */
  q8Activations?: boolean;
  /**
   * Run the output head's Q8_0 products as llama.cpp rounds them too (its eight accumulators per
   * row, the exact fused multiply-add emulation on devices whose fma() is not fused). Off by
   * default: the logits only feed the sampler, and the fast head (products.ts FAST_HEAD: the
   * device's fma, one accumulator) moves them by ~1e-6 at a fraction of the cost.
   */
  exactHead?: boolean;
  /** cos/sin for the RoPE table (the C library's where available: `cTrig()`). */
  trig?: Trig;
}

/** What one step holds, as far as recording it goes. */
export interface StepCounts {
  tokens: number;
  /** Sampled rows (0: a prompt chunk that samples nothing: no head). */
  rows: number;
  /** Some row has a grammar mask: record mask_logits. */
  masked: boolean;
  /** Some row asks for its most likely tokens: record top_logprobs. */
  top?: boolean;
}

/**
 * cos/sin of each position's angle per pair, as (cos, sin). Angles follow llama.cpp's float
 * recurrence (theta = pos, then theta *= base^(-2/d) per pair), divided by the pair's
 * frequency factor (Llama-3 / linear scaling), so the rotations match its rope cache.
 */
export function ropeTable(scale: number, factors: Float32Array, nCtx: number, trig: Trig = MATH_TRIG, mscale = 1): Float32Array {
  const half = factors.length;
  const s = Math.fround(scale);
  const m = Math.fround(mscale);
  const out = new Float32Array(nCtx * half * 2);
  for (let p = 0; p < nCtx; p++) {
    let theta = Math.fround(p);
    for (let j = 0; j < half; j++) {
      const a = factors[j] === 1 ? theta : Math.fround(theta / factors[j]);
      // cosf(theta) * mscale, as ggml's rope_yarn (exact for mscale 1)
      out[2 * (p * half + j)] = Math.fround(trig.cos(a) * m);
      out[2 * (p * half + j) + 1] = Math.fround(trig.sin(a) * m);
      theta = Math.fround(theta * s);
    }
  }
  return out;
}

/** A RoPE table that rotates by nothing: (cos, sin) = (1, 0) for every position and pair. */
function identityRope(nCtx: number, pairs: number): Float32Array {
  const out = new Float32Array(nCtx * pairs * 2);
  for (let i = 0; i < out.length; i += 2) out[i] = 1;
  return out;
}

/** A table of nRot / 2 pairs per position widened to the head's headDim / 2 with identities. */
export function padRope(table: Float32Array, nCtx: number, nRot: number, headDim: number): Float32Array {
  if (nRot === headDim) return table;
  const out = identityRope(nCtx, headDim / 2);
  for (let p = 0; p < nCtx; p++) out.set(table.subarray(p * nRot, (p + 1) * nRot), p * headDim);
  return out;
}

export class ForwardPass {
  readonly buffers: ForwardBuffers;
  readonly dispatchesPerToken: number;
  /** Words of one row's grammar mask. */
  readonly maskWords: number;
  /** Bytes of one layer's K (or V) pool. */
  readonly kvPoolBytes: number;
  private body: Site[] = [];
  private head: Site[] = [];
  private owned: GPUBuffer[] = [];
  private dummy: GPUBuffer;
  private x: GPUBuffer;
  private xn: GPUBuffer;
  private qkv: GPUBuffer;
  private attn: GPUBuffer;
  private ffn: GPUBuffer;
  private gu: GPUBuffer | null = null;
  /** A sublayer's output and its post-norm, before they join the residual (gemma, granite). */
  private sub: { out: GPUBuffer; normed: GPUBuffer } | null = null;
  /** llama.cpp's GELU table (GeGLU models only). */
  private gelu?: GPUBuffer;
  /** RoPE cos/sin per table kind, made for the first layer that uses each. */
  private ropeTables = new Map<LayerHParams["rope"], GPUBuffer>();
  private xq: GPUBuffer;
  /** Activations through Q8_K and back, for the K-quant products (made when the first one is). */
  private xk?: GPUBuffer;
  /** The same activations as Q8_K blocks, for the products that reproduce llama.cpp's integer dots. */
  private xkb?: GPUBuffer;
  private readonly q8kBytes: number;
  private qkvDim: number;

  constructor(
    private device: GPUDevice,
    private host: KernelHost,
    private hp: HParams,
    w: WeightUploader,
    private opts: ForwardOptions,
  ) {
    const { nEmbd, nFf, nVocab } = hp;
    const { maxTokens: T, maxRows: R, pageSize, pagesPerSeq } = opts.shape;
    const qDim = hp.nHead * hp.headDim;
    const kvDim = hp.nHeadKv * hp.headDim;
    this.qkvDim = qDim + 2 * kvDim;
    const buf = (bytes: number, label: string) => {
      const b = storageBuffer(device, bytes, label);
      this.owned.push(b);
      return b;
    };
    // what the matrix products read, bindable as a uniform buffer too (its first 64 KB)
    const activations = (bytes: number, label: string) => {
      const b = storageUniformBuffer(device, Math.max(UNIFORM_X_BYTES, bytes), label);
      this.owned.push(b);
      return b;
    };
    this.dummy = buf(16, "dummy");
    this.x = buf(4 * T * nEmbd, "x");
    this.xn = activations(4 * T * nEmbd, "xn");
    this.qkv = buf(4 * T * this.qkvDim, "qkv");
    this.attn = activations(4 * T * qDim, "attn");
    this.ffn = activations(4 * T * nFf, "ffn");
    // Q8_0 activations, for the widest input
    this.xq = activations(4 * Q8_BLOCK_WORDS * T * Math.ceil(Math.max(nEmbd, qDim, nFf) / 32), "xq");
    this.q8kBytes = 4 * T * Math.max(nEmbd, qDim, nFf);
    this.maskWords = Math.ceil(nVocab / 32);
    this.buffers = {
      step: buf(STEP_BYTES(opts.shape), "step"),
      pageTable: buf(4 * R * pagesPerSeq, "page table"),
      fed: buf(4 * R, "fed tokens"),
      logits: buf(4 * R * nVocab, "logits"),
      out: buf(8 * R, "sampled"),
      top: buf(8 * MAX_TOP_LOGPROBS * R, "top logprobs"),
      mask: buf(4 * R * this.maskWords, "token masks"),
    };

    // token embedding
    const embd = w.matrix(["token_embd.weight"]);
    const embed = host.get("embed", { format: embd.type });
    for (const part of embd.parts) {
      const bind = this.bind(embed, [part.buffer, this.buffers.step, this.buffers.fed, this.x,
        this.params(EMBED_PARAMS, { K: nEmbd, row_bytes: embd.rowBytes, row0: part.row0, rows: part.rows, x_stride: nEmbd, scale: hp.embedScale })]);
      this.body.push({ label: "embed", span: "tokens", kernel: () => embed, bind: () => bind, grid: (m) => [Math.ceil(Math.ceil(nEmbd / 32) / 64), m, 1] });
    }

    this.kvPoolBytes = kvElementBytes(host.features) * opts.kvPages * pageSize * kvDim;
    const recipe = recipeFor(hp.arch);
    for (let l = 0; l < hp.nLayer; l++) {
      const kc = buf(this.kvPoolBytes, `k pages ${l}`);
      const vc = buf(this.kvPoolBytes, `v pages ${l}`);
      for (const step of recipe) this.addStep(step, l, w, kc, vc);
    }

    // the head: final norm of each sampled row's token, logits, grammar masks, sampling
    const out = w.matrix([hp.tiedEmbeddings ? "token_embd.weight" : "output.weight"]);
    this.addNorm(w.vector("output_norm.weight"), "output_norm", out, "rows");
    this.head.push(...this.productSites(out, this.xn, this.buffers.logits, { mode: 0, xStride: nEmbd, yStride: nVocab, head: { exact: !!opts.exactHead } }, this.head));
    this.addLogitCap();
    this.addSampler();
    this.dispatchesPerToken = this.body.length + this.head.filter((s) => !s.only).length;
  }

  /** A layer's RoPE cos/sin table on the device (one per kind the model's layers use). */
  private ropeBuffer(kind: LayerHParams["rope"], w: WeightUploader): GPUBuffer {
    let b = this.ropeTables.get(kind);
    if (!b) {
      b = uploadF32(this.device, this.ropeCosSin(kind, w), `rope cos/sin (${kind})`);
      this.owned.push(b);
      this.ropeTables.set(kind, b);
    }
    return b;
  }

  /**
   * The RoPE cos/sin table of a kind of layer: "global" with the model's frequency scaling,
   * "local" (sliding-window layers) at their own base without it, "none" the identity. Pairs
   * past a partial rotation's nRot / 2 are identities too.
   */
  private ropeCosSin(kind: LayerHParams["rope"], w: WeightUploader): Float32Array {
    const { headDim, nRot, ropeTheta, ropeScaling, ropeFreqsTensor, ropeAttnFactor, ropeThetaLocal } = this.hp;
    const pairs = headDim / 2;
    if (kind === "none") return identityRope(this.opts.nCtx, pairs);
    let factors: Float32Array = new Float32Array(nRot / 2).fill(1);
    const global = kind === "global";
    if (global && ropeFreqsTensor) factors = w.vectorF32(ropeFreqsTensor);
    else if (global && ropeScaling?.type === "llama3") factors = llama3RopeFactors(this.hp, ropeScaling);
    else if (global && ropeScaling?.type === "longrope") {
      // llama.cpp's choice: the long factors once a sequence may pass the trained context
      factors = w.vectorF32(this.opts.nCtx > ropeScaling.originalContext ? ropeScaling.longFactors : ropeScaling.shortFactors);
    }
    if (global && ropeScaling?.type === "linear") factors = factors.map((f) => f * ropeScaling.factor);
    const base = global ? ropeTheta : ropeThetaLocal;
    // powf(base, -2.0f / n_dims), as llama.cpp's rope cache starts from
    const rotated = ropeTable(Math.fround(Math.pow(base, Math.fround(-2 / nRot))), factors, this.opts.nCtx, this.opts.trig, ropeAttnFactor);
    return padRope(rotated, this.opts.nCtx, nRot, headDim);
  }

  private params<F extends Record<string, "u32" | "f32">>(layout: ParamsLayout<F>, values: { [K in keyof F]: number }): GPUBuffer {
    const b = paramsBuffer(this.device, layout, values);
    this.owned.push(b);
    return b;
  }

  private bind(k: Kernel, buffers: GPUBuffer[]): GPUBindGroup {
    return this.host.bind(k, buffers);
  }

  /** A site with one pipeline and one bind group. */
  private fixed(label: string, span: Span, k: Kernel, buffers: GPUBuffer[], grid: (n: number) => [number, number, number]): Site {
    const bind = this.bind(k, buffers);
    return { label, span, kernel: () => k, bind: () => bind, grid };
  }

  /**
   * RMSNorm of the residual stream into `xn` (the output norm: of each sampled row's token);
   * when the matrix that reads it (`consumer`) takes Q8_0 activations, the norm also writes
   * them, and that product skips its own quantize step.
   */
  private addNorm(weight: GPUBuffer, label: string, consumer: { type: GGMLType; k: number } | null, span: Span = "tokens", io = { src: this.x, dst: this.xn }) {
    const { nEmbd, rmsEps } = this.hp;
    const q8 = consumer !== null && this.takesQ8(consumer);
    const k = normKernel(this.host, { inPlace: false, q8Out: q8 });
    const p = this.params(NORM_PARAMS, { n: nEmbd, group_stride: 0, x_stride: nEmbd, y_stride: nEmbd, eps: rmsEps, gather: span === "rows" ? 1 : 0, off: 0 });
    const site = this.fixed(label, span, k, [io.src, io.dst, weight, this.buffers.step, p, q8 ? this.xq : this.dummy], (m) => [1, m, 1]);
    (span === "rows" ? this.head : this.body).push({ ...site, q8src: q8 ? io.dst : undefined });
  }

  /** Final soft-capping (gemma2) or division by a logit scale (granite) of each sampled row. */
  private addLogitCap() {
    const { finalSoftcap: cap, logitScale, nVocab } = this.hp;
    if (cap === 0 && logitScale === 1) return;
    const p = this.params(LOGIT_CAP_PARAMS, { n_vocab: nVocab, pre: cap !== 0 ? 1 / cap : 1 / logitScale, cap });
    this.head.push(this.fixed("logit cap", "rows", this.host.get("logit_cap"), [this.buffers.logits, p], (r) => [Math.ceil(nVocab / 256), r, 1]));
  }

  /** llama.cpp's GELU table on the device (gelu-table.ts), for GeGLU models. */
  private geluBuffer(): GPUBuffer {
    if (!this.gelu) {
      this.gelu = uploadF32(this.device, ggmlGeluTable(), "gelu table");
      this.owned.push(this.gelu);
    }
    return this.gelu;
  }

  /** The buffers a sublayer's output goes through when it cannot be added by its matvec. */
  private sublayerBuffers(): { out: GPUBuffer; normed: GPUBuffer } {
    if (!this.sub) {
      const bytes = 4 * this.opts.shape.maxTokens * this.hp.nEmbd;
      this.sub = { out: storageBuffer(this.device, bytes, "sublayer out"), normed: storageBuffer(this.device, bytes, "sublayer post-norm") };
      this.owned.push(this.sub.out, this.sub.normed);
    }
    return this.sub;
  }

  /** The Q8_K round trip's output, made for the first K-quant product (a model without one pays nothing). */
  private q8kBuffer(): GPUBuffer {
    if (!this.xk) {
      this.xk = storageUniformBuffer(this.device, Math.max(UNIFORM_X_BYTES, this.q8kBytes), "xk");
      // 65 words per 256 activations (quantize_q8k.wgsl)
      this.xkb = storageBuffer(this.device, Math.ceil((this.q8kBytes / 4 / 256) * 65) * 4, "xk blocks");
      this.owned.push(this.xk, this.xkb);
    }
    return this.xk;
  }

  /** Whether products with this matrix read their activations through Q8_K, as llama.cpp's do. */
  private takesQ8K(mat: { type: GGMLType; k: number }): boolean {
    return (this.opts.q8Activations ?? true) && takesQ8K(mat);
  }

  /** Whether products with this matrix run on Q8_0-quantized activations. */
  private takesQ8(mat: { type: GGMLType; k: number }): boolean {
    return (this.opts.q8Activations ?? true) && hasQ8Dot(mat);
  }

  /**
   * Dispatches of one matrix (one per part) reading `src`, writing rows into `dst`. Formats with
   * an integer-dot kernel (Q8_0, Q4_0, Q5_0, ...) first quantize `src` to Q8_0 blocks, and the
   * K-quants round it through Q8_K, as llama.cpp does, unless the previous site already did.
   */
  private productSites(
    mat: Matrix,
    src: GPUBuffer,
    dst: GPUBuffer,
    o: { mode: 0 | 1 | 2; xStride: number; yStride: number; yOff?: number; bias?: Float32Array; head?: { exact: boolean } },
    list: Site[] = this.body,
  ): Site[] {
    const host = this.host;
    const span: Span = o.head ? "rows" : "tokens";
    const n = o.mode === 2 ? mat.n / 2 : mat.n;
    const q8 = this.takesQ8(mat);
    // the K-quant products read their activations after a round trip through Q8_K (rows of K)
    const q8k = !q8 && this.takesQ8K(mat);
    const x = q8 ? this.xq : q8k ? this.q8kBuffer() : src;
    const exact = q8k && exactQ8K(mat);
    const shape: ProductShape = { mat, mode: o.mode, xStride: q8k ? mat.k : o.xStride, bias: !!o.bias, head: o.head, q8, q8k: exact };
    const kernelFor = (m: number) => productPipeline(host, productKernel(shape, m));
    const sites: Site[] = [];
    if (q8 && list.at(-1)?.q8src !== src) {
      const qk = host.get("quantize_q8");
      sites.push({
        ...this.fixed(`quantize ${mat.name}`, span, qk, [src, this.xq, this.params(QUANTIZE_PARAMS, { K: mat.k, x_stride: o.xStride })], (m) => [Math.ceil(mat.k / 32 / 64), m, 1]),
        q8src: src,
      });
    }
    if (q8k && list.at(-1)?.q8ksrc !== src) {
      const qk = host.get("quantize_q8k");
      sites.push({
        ...this.fixed(`quantize ${mat.name} (Q8_K)`, span, qk, [src, x, this.params(QUANTIZE_PARAMS, { K: mat.k, x_stride: o.xStride }), this.xkb!], (m) => [Math.ceil(mat.k / 256 / 64), m, 1]),
        q8ksrc: src,
      });
    }
    const kind = exact ? "matvec_q8k" : q8 ? "matvec_q8" : "matvec";
    for (const part of mat.parts) {
      const rows = o.mode === 2 ? n : part.rows;
      // the float kernel's row tiling is the same for every step: its folded x count is a parameter
      const [groupsX] = foldGroups(Math.ceil(rows / MATVEC_TILING[1]));
      let bias = this.dummy;
      if (o.bias) {
        bias = uploadF32(this.device, o.bias.subarray(part.row0, part.row0 + rows));
        this.owned.push(bias);
      }
      const p = this.params(MATVEC_PARAMS, {
        K: mat.k, N: rows, row_bytes: mat.rowBytes, x_stride: shape.xStride, y_stride: o.yStride, y_off: (o.yOff ?? 0) + part.row0,
        groups_x: groupsX, rows_only: o.head ? 1 : 0,
      });
      const buffers = [part.buffer, exact ? this.xkb! : x, dst, bias, this.buffers.step, p];
      const storageBind = host.bindTo(kind, buffers);
      const uniformBind = !exact && uniformActivations(shape, 1) ? host.bindTo(q8 ? "matvec_q8_uniform" : "matvec_uniform", buffers) : storageBind;
      kernelFor(1); // compiled now, as the first decode step would
      sites.push({
        label: mat.name,
        span,
        q8src: q8 ? src : undefined,
        q8ksrc: q8k ? src : undefined,
        kernel: kernelFor,
        bind: (m) => (!exact && uniformActivations(shape, m) ? uniformBind : storageBind),
        grid: (m) => productGrid(productKernel(shape, m), rows, m),
      });
    }
    return sites;
  }

  /** The logit masks (steps with a constrained row only) and both sampler passes, over the step's rows. */
  private addSampler() {
    const host = this.host;
    const { nVocab } = this.hp;
    const b = this.buffers;
    const partials = storageBuffer(this.device, SAMPLE_PARTIALS_PER_ROW * this.opts.shape.maxRows, "sample partials");
    this.owned.push(partials);
    const sampleParams = this.params(SAMPLE_PARAMS, { n_vocab: nVocab });
    const mask = host.get("mask_logits");
    this.head.push({
      ...this.fixed("mask logits", "rows", mask, [b.logits, b.mask, this.params(MASK_PARAMS, { n_vocab: nVocab, words: this.maskWords }), b.step], (r) => [Math.ceil(nVocab / MASK_WG), r, 1]),
      only: "masked",
    });
    this.head.push(this.fixed("sample partials", "rows", host.get("sample_partial"), [b.logits, partials, sampleParams, b.step], (r) => [SAMPLE_GROUPS, r, 1]));
    this.head.push(this.fixed("sample", "rows", host.get("sample"), [b.logits, b.out, b.fed, b.step, sampleParams, partials], (r) => [1, r, 1]));
    this.head.push({ ...this.fixed("top logprobs", "rows", host.get("top_logprobs"), [b.logits, b.top, b.step, sampleParams, partials], (r) => [1, r, 1]), only: "top" });
  }

  private addStep(step: Step, l: number, w: WeightUploader, kc: GPUBuffer, vc: GPUBuffer) {
    const hp = this.hp;
    const { nEmbd, nHead, nHeadKv, headDim, nFf } = hp;
    const qDim = nHead * headDim;
    const kvDim = nHeadKv * headDim;
    const t = (name: string) => `blk.${l}.${name}.weight`;
    const host = this.host;
    switch (step.op) {
      case "norm": {
        const reader = w.info(t(NORM_CONSUMER[step.weight].find((n) => w.has(t(n))) ?? NORM_CONSUMER[step.weight][0]));
        this.addNorm(w.vector(t(step.weight)), `${l}.${step.weight}`, { type: reader.type, k: reader.dims[0] });
        return;
      }
      case "qkv": {
        if (w.has(t("attn_qkv"))) {
          const bias = step.bias ? w.vectorF32(`blk.${l}.attn_qkv.bias`) : undefined;
          this.body.push(...this.productSites(w.matrix([t("attn_qkv")]), this.xn, this.qkv, { mode: 0, xStride: nEmbd, yStride: this.qkvDim, bias }));
          return;
        }
        const names = ["attn_q", "attn_k", "attn_v"];
        const biases = step.bias ? names.map((n) => w.vectorF32(`blk.${l}.${n}.bias`)) : null;
        if (w.stackable(names.map(t))) {
          const bias = biases ? Float32Array.from(biases.flatMap((b) => [...b])) : undefined;
          this.body.push(...this.productSites(w.matrix(names.map(t)), this.xn, this.qkv, { mode: 0, xStride: nEmbd, yStride: this.qkvDim, bias }));
        } else {
          const offs = [0, qDim, qDim + kvDim];
          names.forEach((n, i) => {
            this.body.push(...this.productSites(w.matrix([t(n)]), this.xn, this.qkv, { mode: 0, xStride: nEmbd, yStride: this.qkvDim, yOff: offs[i], bias: biases?.[i] }));
          });
        }
        return;
      }
      case "qk_norm": {
        const k = normKernel(host, { inPlace: true, q8Out: false });
        for (const [name, heads, off] of [["attn_q_norm", nHead, 0], ["attn_k_norm", nHeadKv, qDim]] as const) {
          const p = this.params(NORM_PARAMS, { n: headDim, group_stride: headDim, x_stride: this.qkvDim, y_stride: this.qkvDim, eps: hp.rmsEps, gather: 0, off });
          // (XQ is bound but not written: Q8_OUT is off; the dummy is already bound read-only)
          this.body.push(this.fixed(`${l}.${name}`, "tokens", k, [this.dummy, this.qkv, w.vector(t(name)), this.buffers.step, p, this.xq], (m) => [heads, m, 1]));
        }
        return;
      }
      case "rope_kv": {
        const k = host.get("rope");
        const total = ((nHead + nHeadKv) * headDim) / 2 + kvDim;
        const p = this.params(ROPE_PARAMS, { n_head: nHead, n_head_kv: nHeadKv, head_dim: headDim, qkv_stride: this.qkvDim, kv_dim: kvDim, neox: hp.ropeStyle === "neox" ? 1 : 0, n_rot: hp.nRot });
        const table = this.ropeBuffer(hp.layers[l].rope, w);
        this.body.push(this.fixed(`${l}.rope_kv`, "tokens", k, [this.qkv, kc, vc, table, this.buffers.step, p, this.buffers.pageTable], (m) => [Math.ceil(total / 64), m, 1]));
        return;
      }
      case "attention": {
        const k = attentionKernel(host, headDim);
        // llama.cpp divides the scale by the soft-cap, then caps: softcap * tanh(s * scale)
        const cap = hp.attnSoftcap;
        const p = this.params(ATTENTION_PARAMS, {
          n_head: nHead, n_head_kv: nHeadKv, head_dim: headDim, qkv_stride: this.qkvDim, kv_dim: kvDim, out_stride: qDim,
          scale: cap !== 0 ? Math.fround(hp.kqScale) / cap : hp.kqScale, q_scale: hp.qScale, softcap: cap, window: hp.layers[l].window,
        });
        this.body.push(this.fixed(`${l}.attention`, "tokens", k, [this.qkv, kc, vc, this.attn, this.buffers.step, p, this.buffers.pageTable], (m) => [nHead, m, 1]));
        return;
      }
      case "proj_add": {
        const src = step.src === "attn" ? this.attn : this.ffn;
        const k = step.src === "attn" ? qDim : nFf;
        const mat = w.matrix([t(step.weight)]);
        if (!step.post && hp.residualScale === 1) {
          this.body.push(...this.productSites(mat, src, this.x, { mode: 1, xStride: k, yStride: nEmbd }));
          return;
        }
        // the output apart, its post-norm, then residual += scale * that
        const sub = this.sublayerBuffers();
        this.body.push(...this.productSites(mat, src, sub.out, { mode: 0, xStride: k, yStride: nEmbd }));
        if (step.post) this.addNorm(w.vector(t(step.post)), `${l}.${step.post}`, null, "tokens", { src: sub.out, dst: sub.normed });
        const p = this.params(ADD_PARAMS, { n: nEmbd, scale: hp.residualScale });
        this.body.push(this.fixed(`${l}.${step.src} residual`, "tokens", host.get("add"), [step.post ? sub.normed : sub.out, this.x, p], (m) => [Math.ceil(nEmbd / 64), m, 1]));
        return;
      }
      case "glu": {
        // gate and up as two tensors, or fused in ffn_up (gate rows first: phi3)
        const fused = !w.has(t("ffn_gate"));
        const names = fused ? [t("ffn_up")] : [t("ffn_gate"), t("ffn_up")];
        if (hp.ffnAct === "silu" && w.stackable(names)) {
          this.body.push(...this.productSites(w.matrix(names), this.xn, this.ffn, { mode: 2, xStride: nEmbd, yStride: nFf }));
          return;
        }
        if (!this.gu) { this.gu = storageBuffer(this.device, 4 * this.opts.shape.maxTokens * 2 * nFf, "gate|up"); this.owned.push(this.gu); }
        names.forEach((name, i) => {
          this.body.push(...this.productSites(w.matrix([name]), this.xn, this.gu!, { mode: 0, xStride: nEmbd, yStride: 2 * nFf, yOff: i * nFf }));
        });
        const k = host.get("glu_mul", { act: hp.ffnAct });
        const p = this.params(GLU_MUL_PARAMS, { n: nFf, g_off: 0, u_off: nFf, stride: 2 * nFf });
        const gelu = hp.ffnAct === "gelu" ? this.geluBuffer() : this.dummy;
        this.body.push(this.fixed(`${l}.${hp.ffnAct}_mul`, "tokens", k, [this.gu, this.ffn, p, gelu], (m) => [Math.ceil(nFf / 64), m, 1]));
        return;
      }
    }
  }

  /** The sites of a step, in dispatch order: the body, then (with rows) the head. */
  private stepSites(c: StepCounts): Site[] {
    if (c.rows === 0) return this.body;
    const on = { masked: c.masked, top: !!c.top };
    const key = `${+on.masked}${+on.top}`;
    return (this.siteLists[key] ??= [...this.body, ...this.head.filter((s) => !s.only || on[s.only])]);
  }
  private siteLists: Record<string, Site[]> = {};

  /** Records one step (its step buffer, page table entries and masks already written). */
  encode(enc: GPUCommandEncoder, c: StepCounts) {
    this.record(enc, c, this.stepSites(c));
  }

  /**
   * Profiling hook (bench/profile-step.ts): the step's dispatches as (label, kernel name), and
   * encoding of a chosen subset of them, each `repeat` times, optionally with a compute-pass
   * descriptor per dispatch (timestamp writes). The normal path never calls these.
   */
  describeStep(c: StepCounts): { label: string; kernel: string }[] {
    return this.stepSites(c).map((s) => ({ label: s.label, kernel: this.host.nameOf(s.kernel(this.countOf(s, c))) }));
  }

  encodeSubset(enc: GPUCommandEncoder, c: StepCounts, indices: number[], repeat = 1, passFor?: (k: number) => GPUComputePassDescriptor) {
    const all = this.stepSites(c);
    const sites = indices.flatMap((i) => Array<Site>(repeat).fill(all[i]));
    this.record(enc, c, sites, passFor);
  }

  private countOf(s: Site, c: StepCounts): number {
    return s.span === "rows" ? c.rows : c.tokens;
  }

  private record(enc: GPUCommandEncoder, c: StepCounts, sites: Site[], passFor?: (k: number) => GPUComputePassDescriptor) {
    const perDispatch = (this.opts.passPerDispatch ?? false) || passFor !== undefined;
    let pass = enc.beginComputePass(passFor?.(0));
    sites.forEach((s, i) => {
      const d = this.dispatchOf(s, this.countOf(s, c));
      if (perDispatch && i > 0) { pass.end(); pass = enc.beginComputePass(passFor?.(i)); }
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bind);
      pass.dispatchWorkgroups(d.grid[0], d.grid[1], d.grid[2]);
    });
    pass.end();
  }

  /** A site's pipeline, bind group and grid for n tokens (rows), worked out once per n. */
  private dispatchOf(s: Site, n: number): { pipeline: GPUComputePipeline; bind: GPUBindGroup; grid: [number, number, number] } {
    let byCount = this.dispatches.get(s);
    if (!byCount) this.dispatches.set(s, (byCount = []));
    return (byCount[n] ??= { pipeline: s.kernel(n).pipeline, bind: s.bind(n), grid: s.grid(n) });
  }
  private dispatches = new Map<Site, { pipeline: GPUComputePipeline; bind: GPUBindGroup; grid: [number, number, number] }[]>();

  /** Bytes of the device buffers the pass owns: KV pools, activations, step inputs and outputs. */
  get deviceBytes(): number {
    return this.owned.reduce((n, b) => n + b.size, 0);
  }

  dispose() {
    for (const b of this.owned) b.destroy();
    this.owned = [];
  }
}
