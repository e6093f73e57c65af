// The forward pass as a list of prepared dispatches ("sites"): built once per model from its
// layer recipe, with every buffer, bind group and parameter block allocated up front. Encoding a
// step only records dispatches into the caller's command encoder; the token count M of a step
// lives on the GPU (state buffer) so the same bind groups serve prefill and decode.

import type { HParams } from "./model/hparams.ts";
import { llama3RopeFactors } from "./model/hparams.ts";
import { KernelHost, Q8DOT_SOURCES, Q8_BLOCK_WORDS, UNIFORM_X_BYTES, attentionKernel, normKernel, type Kernel, type KernelVariant } from "./gpu/kernels.ts";
import { storageBuffer, storageUniformBuffer, uniformBuffer, uploadF32, type Field } from "./gpu/buffers.ts";
import { foldGroups } from "./gpu/dispatch.ts";
import { recipeFor, type Step } from "./recipe.ts";
import { SAMPLE_PARTIALS_BYTES, sampleParamsFields, samplerDispatches, type SamplerBuffers } from "./sampler.ts";
import { GGMLType } from "./model/types.ts";
import type { Matrix, WeightUploader } from "./weights.ts";
import { MATH_TRIG, type Trig } from "./libc-math.ts";

/** Tokens per prefill chunk (scratch buffers are sized for this many). */
export const MAX_BATCH = 64;
/**
 * Tokens per workgroup tile of a prompt's products, by kernel and, for the integer-dot kernel,
 * by ORDER. It loads a block's weights once for its tile, but each token keeps its accumulators
 * live: with llama.cpp's eight per row (ORDER 0) tiles of 2 ran stories15M q8_0's 64-token
 * products in 0.66-0.74x the time of tiles of 8 on lavapipe (with Q8_TILING; tiles of 3 or 4
 * slower than 2, of 1 about as slow as 8), and its prompts 432 -> 561 tok/s; with one (ORDER 1,
 * repacked Q4_0) tiles of 8 stay best (q4_0 prompts 700 tok/s, 640 with tiles of 4). The float
 * kernel keeps one sum per token and dequantizes a chunk once per tile: the larger the better
 * (stories15M f32 prompts 415 tok/s in tiles of 8, 623 of 16, 665 of 32, 687 of 64; a random
 * Q4_K model's 183 -> 250 with 32, which keeps a GPU's registers within reason).
 */
const PREFILL_TILE = { float: 32, q8: { 0: 2, 1: 8 } } as const;
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
 * time of one row and eight accumulators on lavapipe.
 */
const FAST_HEAD = { order: 1, tiling: [2, 64] } as const;
/**
 * Matvec tiling, every weight format: [threads per row, rows per workgroup]. A row per invocation
 * needs no workgroup reduction and reads each activation at an address all threads share: on
 * lavapipe Q8_0 and Q4_0 (aligned rows, quant.ts `toGpuRows`) ran 1.5-2x faster than 2 x 32
 * and F32 1.4x faster than 4 x 16 (stories15M decode 11.8 -> 16.8 tok/s; its greedy run still
 * equals llama.cpp's, the one near-tie flip at the same token with a 4e-4 logit gap), and the
 * K-quants read in place 1.13x faster than 2 x 32 (a 512 x 6-layer Q4_K_M-like model).
 */
export const MATVEC_TILING: [number, number] = [1, 64];
export const RNG_LEN = 256;

/** The first matrix that reads each layer norm's output (decides whether the norm also writes Q8_0 blocks). */
const NORM_CONSUMER: Record<string, string> = { attn_norm: "attn_q", ffn_norm: "ffn_gate" };

/**
 * Which of llama.cpp's CPU kernels a Q8_0-activation product reproduces (matvec_q8.wgsl ORDER):
 * its x86 backend repacks Q4_0 matrices whose rows come in groups of 8 (all but the token
 * embedding, which it also looks rows up in) and runs them block by block (1); everything else
 * goes through the eight-lane vec_dot / tinyBLAS order (0).
 */
export function q8DotOrder(mat: Pick<Matrix, "type" | "n" | "name">): 0 | 1 {
  const repacked = mat.type === GGMLType.Q4_0 && mat.n % 8 === 0 && !mat.name.includes("token_embd");
  return repacked ? 1 : 0;
}

interface Site {
  label: string;
  /** The activation buffer this site quantized or consumed as Q8_0 (to skip re-quantizing). */
  q8src?: GPUBuffer;
  kernel: (m: number) => Kernel;
  bind: GPUBindGroup;
  /** The bind group for an m-token step, where the kernel's layout depends on m (else `bind`). */
  bindFor?: (m: number) => GPUBindGroup;
  grid: (m: number) => [number, number, number];
}

export interface ForwardBuffers extends SamplerBuffers {
  ids: GPUBuffer;
  state: GPUBuffer;
  logits: GPUBuffer;
}

export interface ForwardOptions {
  nCtx: number;
  /** Encode each dispatch in its own compute pass (cheaper on lavapipe) or all in one. */
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
   * default: the logits only feed the sampler, and the fast head (FAST_HEAD: the device's fma,
   * one accumulator) moves them by ~1e-6 at a fraction of the cost.
   */
  exactHead?: boolean;
  /** cos/sin for the RoPE table (the C library's where available: `cTrig()`). */
  trig?: Trig;
}

/**
 * cos/sin of each position's angle per pair, as (cos, sin). Angles follow llama.cpp's float
 * recurrence (theta = pos, then theta *= base^(-2/d) per pair), divided by the pair's
 * frequency factor (Llama-3 / linear scaling), so the rotations match its rope cache.
 */
export function ropeTable(scale: number, factors: Float32Array, nCtx: number, trig: Trig = MATH_TRIG): Float32Array {
  const half = factors.length;
  const s = Math.fround(scale);
  const out = new Float32Array(nCtx * half * 2);
  for (let p = 0; p < nCtx; p++) {
    let theta = Math.fround(p);
    for (let j = 0; j < half; j++) {
      const a = factors[j] === 1 ? theta : Math.fround(theta / factors[j]);
      out[2 * (p * half + j)] = trig.cos(a);
      out[2 * (p * half + j) + 1] = trig.sin(a);
      theta = Math.fround(theta * s);
    }
  }
  return out;
}

export class ForwardPass {
  readonly buffers: ForwardBuffers;
  readonly dispatchesPerToken: number;
  private body: Site[] = [];
  private head: Site[] = [];
  private sampler: Site[];
  private owned: GPUBuffer[] = [];
  private dummy: GPUBuffer;
  private x: GPUBuffer;
  private xn: GPUBuffer;
  private qkv: GPUBuffer;
  private attn: GPUBuffer;
  private ffn: GPUBuffer;
  private gu: GPUBuffer | null = null;
  private xq: GPUBuffer;
  private freq: GPUBuffer;
  private qkvDim: number;

  constructor(
    private device: GPUDevice,
    private host: KernelHost,
    private hp: HParams,
    w: WeightUploader,
    private opts: ForwardOptions,
  ) {
    const { nEmbd, nHead, nHeadKv, headDim, nFf, nVocab } = hp;
    const qDim = nHead * headDim;
    const kvDim = nHeadKv * headDim;
    this.qkvDim = qDim + 2 * kvDim;
    const B = MAX_BATCH;
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
    this.x = buf(4 * B * nEmbd, "x");
    this.xn = activations(4 * B * nEmbd, "xn");
    this.qkv = buf(4 * B * this.qkvDim, "qkv");
    this.attn = activations(4 * B * qDim, "attn");
    this.ffn = activations(4 * B * nFf, "ffn");
    // Q8_0 activations, for the widest input
    this.xq = activations(4 * Q8_BLOCK_WORDS * B * Math.ceil(Math.max(nEmbd, hp.nHead * hp.headDim, nFf) / 32), "xq");
    this.buffers = {
      ids: buf(4 * B, "ids"),
      state: buf(16, "state"),
      logits: buf(4 * nVocab, "logits"),
      out: buf(8, "out"),
      rng: buf(4 * RNG_LEN, "rng"),
      sampleParams: uniformBuffer(device, sampleParamsFields(nVocab, 0, 1, RNG_LEN, true), "sample params"),
      samplePartials: buf(SAMPLE_PARTIALS_BYTES, "sample partials"),
    };
    this.freq = uploadF32(device, this.ropeCosSin(w), "rope cos/sin");
    this.owned.push(this.freq);

    // token embedding
    const embd = w.matrix(["token_embd.weight"]);
    for (const part of embd.parts) {
      this.body.push({
        label: "embed",
        kernel: () => host.get("embed", { format: embd.type }),
        bind: this.bindGroup(host.get("embed", { format: embd.type }), [
          part.buffer, this.buffers.ids, this.x, this.params([nEmbd, embd.rowBytes, part.row0, part.rows, nEmbd]),
        ]),
        grid: (m) => [Math.ceil(Math.ceil(nEmbd / 32) / 64), m, 1],
      });
    }

    const kvBytes = host.features.shaderF16 ? 2 : 4;
    const recipe = recipeFor(hp.arch);
    for (let l = 0; l < hp.nLayer; l++) {
      const kc = buf(kvBytes * opts.nCtx * kvDim, `k cache ${l}`);
      const vc = buf(kvBytes * opts.nCtx * kvDim, `v cache ${l}`);
      for (const step of recipe) this.addStep(step, l, w, kc, vc);
    }

    // output head: final norm, logits of the last token, sampling
    const out = w.matrix([hp.tiedEmbeddings ? "token_embd.weight" : "output.weight"]);
    this.addNorm(w.vector("output_norm.weight"), "output_norm", out);
    this.head.push(...this.matvecSites(out, this.xn, this.buffers.logits, { mode: 0, xStride: nEmbd, yStride: nVocab, lastOnly: true, fastHead: !opts.exactHead }, this.head));
    this.sampler = samplerDispatches(host, this.buffers).map((d) => ({
      label: d.label,
      kernel: () => d.kernel,
      bind: d.bind,
      grid: () => d.grid,
    }));
    this.dispatchesPerToken = this.body.length + this.head.length + this.sampler.length;
  }

  /** The RoPE cos/sin table with the model's frequency scaling. */
  private ropeCosSin(w: WeightUploader): Float32Array {
    const { headDim, ropeTheta, ropeScaling, ropeFreqsTensor } = this.hp;
    let factors: Float32Array = new Float32Array(headDim / 2).fill(1);
    if (ropeFreqsTensor) factors = w.vectorF32(ropeFreqsTensor);
    else if (ropeScaling?.type === "llama3") factors = llama3RopeFactors(this.hp, ropeScaling);
    if (ropeScaling?.type === "linear") factors = factors.map((f) => f * ropeScaling.factor);
    // powf(base, -2.0f / n_dims), as llama.cpp's rope cache starts from
    return ropeTable(Math.fround(Math.pow(ropeTheta, Math.fround(-2 / headDim))), factors, this.opts.nCtx, this.opts.trig);
  }

  private params(fields: Field[]): GPUBuffer {
    const b = uniformBuffer(this.device, fields);
    this.owned.push(b);
    return b;
  }

  private bindGroup(k: Kernel, buffers: GPUBuffer[]): GPUBindGroup {
    return this.host.bind(k, buffers);
  }

  /**
   * RMSNorm of the residual stream into `xn`; when the matrix that reads it (`consumer`) takes
   * Q8_0 activations, the norm also writes them, and that product skips its own quantize step.
   */
  private addNorm(weight: GPUBuffer, label: string, consumer: { type: GGMLType; k: number }) {
    const { nEmbd, rmsEps } = this.hp;
    const q8 = this.takesQ8(consumer);
    const k = this.host.get(normKernel(this.host.features), { consts: { Q8_OUT: q8 } });
    (label === "output_norm" ? this.head : this.body).push({
      label,
      q8src: q8 ? this.xn : undefined,
      kernel: () => k,
      bind: this.bindGroup(k, [this.x, this.xn, weight, this.buffers.state, this.params([nEmbd, 0, nEmbd, nEmbd, { f: rmsEps }, 0, 0]), q8 ? this.xq : this.dummy]),
      grid: (m) => [1, m, 1],
    });
  }

  /** Whether products with this matrix run on Q8_0-quantized activations. */
  private takesQ8(mat: { type: GGMLType; k: number }): boolean {
    return (this.opts.q8Activations ?? true) && Q8DOT_SOURCES[mat.type] !== undefined && mat.k % 32 === 0;
  }

  /**
   * Dispatches of one matrix (one per part) reading `src`, writing rows into `dst`. Formats with
   * an integer-dot kernel (Q8_0, Q4_0) first quantize `src` to Q8_0 blocks, as llama.cpp does,
   * unless the previous site already did.
   */
  private matvecSites(
    mat: Matrix,
    src: GPUBuffer,
    dst: GPUBuffer,
    o: { mode: 0 | 1 | 2; xStride: number; yStride: number; yOff?: number; bias?: Float32Array; lastOnly?: boolean; fastHead?: boolean },
    list: Site[] = this.body,
  ): Site[] {
    const host = this.host;
    const n = o.mode === 2 ? mat.n / 2 : mat.n;
    const q8 = this.takesQ8(mat);
    const kind = q8 ? "matvec_q8" : "matvec";
    const [TPR, RPW] = MATVEC_TILING;
    const fastHead = !!o.fastHead;
    const order = fastHead ? FAST_HEAD.order : q8DotOrder(mat);
    const tile = (m: number) => (m === 1 || o.lastOnly ? 1 : q8 ? PREFILL_TILE.q8[order] : PREFILL_TILE.float);
    // steps whose activations fit a uniform binding read them from one (kernels.ts UNIFORM_X_BYTES)
    const rowBytes = q8 ? 4 * Q8_BLOCK_WORDS * (mat.k / 32) : o.xStride % 4 === 0 ? 4 * o.xStride : Infinity;
    const uniformX = (m: number) => rowBytes * m <= UNIFORM_X_BYTES;
    // [rows per thread, threads per workgroup]
    const tiling = (m: number): readonly [number, number] => {
      if (!q8) return [1, RPW];
      if (fastHead) return FAST_HEAD.tiling;
      return uniformX(m) ? Q8_TILING.uniform[o.mode] : Q8_TILING.storage;
    };
    const variant = (m: number): KernelVariant => {
      const [rpt, rpw] = tiling(m);
      return {
        format: mat.type,
        consts: q8
          ? { RPW: rpw, RPT: rpt, TT: tile(m), MODE: o.mode, ORDER: order, HAS_BIAS: !!o.bias, NATIVE_FMA: fastHead }
          : { TPR, RPW, TT: tile(m), MODE: o.mode, HAS_BIAS: !!o.bias },
      };
    };
    const kernelFor = (m: number) => host.get(uniformX(m) ? `${kind}_uniform` : kind, variant(m));
    const sites: Site[] = [];
    if (q8 && list.at(-1)?.q8src !== src) {
      const qk = host.get("quantize_q8");
      sites.push({
        label: `quantize ${mat.name}`,
        q8src: src,
        kernel: () => qk,
        bind: this.bindGroup(qk, [src, this.xq, this.params([mat.k, o.xStride])]),
        grid: (m) => [Math.ceil(mat.k / 32 / 64), m, 1],
      });
    }
    for (const part of mat.parts) {
      const rows = o.mode === 2 ? n : part.rows;
      // the grid for each tiling, folded once
      const groups = new Map<number, [number, number]>();
      const gridFor = ([rpt, rpw]: readonly [number, number]) => {
        let g = groups.get(rpt * rpw);
        if (!g) groups.set(rpt * rpw, (g = foldGroups(Math.ceil(rows / (rpt * rpw)))));
        return g;
      };
      const [gx] = gridFor([1, RPW]);
      let bias = this.dummy;
      if (o.bias) {
        bias = uploadF32(this.device, o.bias.subarray(part.row0, part.row0 + rows));
        this.owned.push(bias);
      }
      const p = this.params([mat.k, rows, mat.rowBytes, o.xStride, o.yStride, (o.yOff ?? 0) + part.row0, gx, o.lastOnly ? 1 : 0]);
      const buffers = [part.buffer, q8 ? this.xq : src, dst, bias, this.buffers.state, p];
      const bind = host.bindTo(kind, buffers);
      const uniformBind = uniformX(1) ? host.bindTo(`${kind}_uniform`, buffers) : bind;
      kernelFor(1);  // compiled now, as the first decode step would
      sites.push({
        label: mat.name,
        q8src: q8 ? src : undefined,
        kernel: kernelFor,
        bind,
        bindFor: (m: number) => (uniformX(m) ? uniformBind : bind),
        grid: (m: number) => {
          const [x, y] = gridFor(tiling(m));
          return [x, y, o.lastOnly ? 1 : Math.ceil(m / tile(m))] as [number, number, number];
        },
      });
    }
    return sites;
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
        const reader = w.info(t(NORM_CONSUMER[step.weight]));
        this.addNorm(w.vector(t(step.weight)), `${l}.${step.weight}`, { type: reader.type, k: reader.dims[0] });
        return;
      }
      case "qkv": {
        const names = ["attn_q", "attn_k", "attn_v"];
        const biases = step.bias ? names.map((n) => w.vectorF32(`blk.${l}.${n}.bias`)) : null;
        if (w.stackable(names.map(t))) {
          const bias = biases ? Float32Array.from(biases.flatMap((b) => [...b])) : undefined;
          this.body.push(...this.matvecSites(w.matrix(names.map(t)), this.xn, this.qkv, { mode: 0, xStride: nEmbd, yStride: this.qkvDim, bias }));
        } else {
          const offs = [0, qDim, qDim + kvDim];
          names.forEach((n, i) => {
            this.body.push(...this.matvecSites(w.matrix([t(n)]), this.xn, this.qkv, { mode: 0, xStride: nEmbd, yStride: this.qkvDim, yOff: offs[i], bias: biases?.[i] }));
          });
        }
        return;
      }
      case "qk_norm": {
        const k = host.get(normKernel(host.features), { consts: { SRC: "Y" } });
        for (const [name, heads, off] of [["attn_q_norm", nHead, 0], ["attn_k_norm", nHeadKv, qDim]] as const) {
          const weight = w.vector(t(name));
          this.body.push({
            label: `${l}.${name}`,
            kernel: () => k,
            // (XQ is bound but not written: Q8_OUT is off; the dummy is already bound read-only)
            bind: this.bindGroup(k, [this.dummy, this.qkv, weight, this.buffers.state, this.params([headDim, headDim, this.qkvDim, this.qkvDim, { f: hp.rmsEps }, 0, off]), this.xq]),
            grid: (m) => [heads, m, 1],
          });
        }
        return;
      }
      case "rope_kv": {
        const k = host.get("rope");
        const total = ((nHead + nHeadKv) * headDim) / 2 + kvDim;
        this.body.push({
          label: `${l}.rope_kv`,
          kernel: () => k,
          bind: this.bindGroup(k, [this.qkv, kc, vc, this.freq, this.buffers.state, this.params([nHead, nHeadKv, headDim, this.qkvDim, kvDim, hp.ropeStyle === "neox" ? 1 : 0])]),
          grid: (m) => [Math.ceil(total / 64), m, 1],
        });
        return;
      }
      case "attention": {
        const k = host.get(...attentionKernel(host.features, headDim));
        this.body.push({
          label: `${l}.attention`,
          kernel: () => k,
          bind: this.bindGroup(k, [this.qkv, kc, vc, this.attn, this.buffers.state, this.params([nHead, nHeadKv, headDim, this.qkvDim, kvDim, qDim, { f: 1 / Math.sqrt(headDim) }])]),
          grid: (m) => [nHead, m, 1],
        });
        return;
      }
      case "proj_add": {
        const src = step.src === "attn" ? this.attn : this.ffn;
        const k = step.src === "attn" ? qDim : nFf;
        this.body.push(...this.matvecSites(w.matrix([t(step.weight)]), src, this.x, { mode: 1, xStride: k, yStride: nEmbd }));
        return;
      }
      case "glu": {
        const names = [t("ffn_gate"), t("ffn_up")];
        if (w.stackable(names)) {
          this.body.push(...this.matvecSites(w.matrix(names), this.xn, this.ffn, { mode: 2, xStride: nEmbd, yStride: nFf }));
          return;
        }
        if (!this.gu) { this.gu = storageBuffer(this.device, 4 * MAX_BATCH * 2 * nFf, "gate|up"); this.owned.push(this.gu); }
        names.forEach((name, i) => {
          this.body.push(...this.matvecSites(w.matrix([name]), this.xn, this.gu!, { mode: 0, xStride: nEmbd, yStride: 2 * nFf, yOff: i * nFf }));
        });
        const k = host.get("silu_mul");
        this.body.push({
          label: `${l}.silu_mul`,
          kernel: () => k,
          bind: this.bindGroup(k, [this.gu, this.ffn, this.params([nFf, 0, nFf, 2 * nFf])]),
          grid: (m) => [Math.ceil(nFf / 64), m, 1],
        });
        return;
      }
    }
  }

  /** The sites of one step, in dispatch order: the body, then the head, then the sampler. */
  private stepSites(what: { logits: boolean; sample: boolean }): Site[] {
    return [...this.body, ...(what.logits || what.sample ? this.head : []), ...(what.sample ? this.sampler : [])];
  }

  /**
   * Records one forward step over `m` tokens (ids and state already written): the body, then
   * with `logits` the output head, then with `sample` the sampler.
   */
  encode(enc: GPUCommandEncoder, m: number, what: { logits: boolean; sample: boolean }) {
    this.record(enc, m, this.stepSites(what));
  }

  /**
   * Profiling hook (bench/profile-step.ts): the step's dispatches as (label, kernel name), and
   * encoding of a chosen subset of them, each `repeat` times, optionally with a compute-pass
   * descriptor per dispatch (timestamp writes). The normal path never calls these.
   */
  describeStep(m: number, what: { logits: boolean; sample: boolean }): { label: string; kernel: string }[] {
    return this.stepSites(what).map((s) => ({ label: s.label, kernel: this.host.nameOf(s.kernel(m)) }));
  }

  encodeSubset(
    enc: GPUCommandEncoder, m: number, what: { logits: boolean; sample: boolean },
    indices: number[], repeat = 1, passFor?: (k: number) => GPUComputePassDescriptor,
  ) {
    const all = this.stepSites(what);
    const sites = indices.flatMap((i) => Array<Site>(repeat).fill(all[i]));
    this.record(enc, m, sites, passFor);
  }

  private record(enc: GPUCommandEncoder, m: number, sites: Site[], passFor?: (k: number) => GPUComputePassDescriptor) {
    const perDispatch = (this.opts.passPerDispatch ?? true) || passFor !== undefined;
    let pass = enc.beginComputePass(passFor?.(0));
    sites.forEach((s, i) => {
      if (perDispatch && i > 0) { pass.end(); pass = enc.beginComputePass(passFor?.(i)); }
      pass.setPipeline(s.kernel(m).pipeline);
      pass.setBindGroup(0, s.bindFor?.(m) ?? s.bind);
      const [x, y, z] = s.grid(m);
      pass.dispatchWorkgroups(x, y, z);
    });
    pass.end();
  }

  dispose() {
    for (const b of this.owned) b.destroy();
    this.owned = [];
  }
}
