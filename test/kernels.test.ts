// Every kernel against a plain TypeScript reference on random data, for every weight format and
// for shapes that are not multiples of the workgroup sizes.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";

setDefaultTimeout(60_000);
import { acquireDevice } from "../src/engine/gpu/device.ts";
import { DEFAULT_STEP_SHAPE, KernelHost, MAX_TOP_LOGPROBS, Q8_BLOCK_WORDS, SAMPLE_GROUPS, UNIFORM_X_BYTES, attentionKernel, normKernel, type Kernel, type NormVariant } from "../src/engine/gpu/kernels.ts";
import { readF32, readBuffer, storageBuffer, storageUniformBuffer, uploadBytes, uploadF32, uploadU32 } from "../src/engine/gpu/buffers.ts";
import {
  ADD_PARAMS, ATTENTION_PARAMS, EMBED_PARAMS, MASK_PARAMS, MATVEC_PARAMS, NORM_PARAMS, QUANTIZE_PARAMS, ROPE_PARAMS, SAMPLE_PARAMS, GLU_MUL_PARAMS, LOGIT_CAP_PARAMS,
  paramsBuffer,
} from "../src/engine/gpu/params.ts";
import { STEP_BYTES, StepWriter, type SampleRow, type StepToken } from "../src/engine/step.ts";
import { foldGroups } from "../src/engine/gpu/dispatch.ts";
import { GGMLType } from "../src/engine/model/types.ts";
import { MATVEC_TILING, padRope, ropeTable } from "../src/engine/forward.ts";
import { productGrid, productKernel, productPipeline, type ProductShape } from "../src/engine/products.ts";
import { dequantizeRows, formatOf, gpuRowBytes, halfToFloat, floatToHalf, mulberry32, randomWeights, rowGroup, toGpuRows } from "../src/engine/quant.ts";
import { ggmlGeluTable } from "../src/engine/gelu-table.ts";
import { blockQuants, dotQ4KRepacked, dotQ6KVecDot, dotQ8Row, flashAttentionHead, quantizeRowQ8, quantizeRowQ8K, roundF16, siluGgml } from "./support/cpu-arith.ts";

let device: GPUDevice;
let host: KernelHost;
let fallback: KernelHost;
/** The kernels a GPU gets: subgroups, but not the forms for adapters that run on the CPU. */
let gpuStyle: KernelHost;
let lanesF32: KernelHost;

beforeAll(async () => {
  device = await acquireDevice();
  host = new KernelHost(device);
  fallback = new KernelHost(device, { subgroups: false, shaderF16: false });
  gpuStyle = new KernelHost(device, { cpuLanes: false });
  lanesF32 = new KernelHost(device, { shaderF16: false });
});
// (a device left alive keeps its compiled pipelines mapped: the whole suite is one process)
afterAll(() => device?.destroy());

function run(h: KernelHost, k: Kernel, buffers: GPUBuffer[], grid: [number, number?, number?]) {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(k.pipeline);
  pass.setBindGroup(0, h.bind(k, buffers));
  pass.dispatchWorkgroups(grid[0], grid[1] ?? 1, grid[2] ?? 1);
  pass.end();
  device.queue.submit([enc.finish()]);
}

function randn(n: number, rand: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * scale;
  return a;
}

const SHAPE = DEFAULT_STEP_SHAPE;

/** m tokens of one slot at positions pos0 .. pos0 + m - 1 (their ids given, not fed). */
function tokensAt(pos0: number, m: number, slot = 0, ids: number[] = []): StepToken[] {
  return Array.from({ length: m }, (_, i) => ({ id: ids[i] ?? 0, pos: pos0 + i, slot, fed: false }));
}

/** A step buffer (shaders/step.wgsl) holding `tokens` and sampled `rows`. */
function step(tokens: StepToken[], rows: SampleRow[] = []): GPUBuffer {
  const b = storageBuffer(device, STEP_BYTES(SHAPE));
  new StepWriter(SHAPE).write(device.queue, b, tokens, rows);
  return b;
}

/** The old state(pos, m): a step of m tokens from position pos of slot 0. */
const state = (pos: number, m: number) => step(tokensAt(pos, m));

/** Slot s's page i at page `pages(s)[i]` (default: every slot's pages in order, slot after slot). */
function pageTable(pages: (slot: number) => number[] = (s) => Array.from({ length: SHAPE.pagesPerSeq }, (_, i) => s * SHAPE.pagesPerSeq + i)): GPUBuffer {
  const pt = new Uint32Array(SHAPE.maxRows * SHAPE.pagesPerSeq);
  for (let s = 0; s < SHAPE.maxRows; s++) pt.set(pages(s).slice(0, SHAPE.pagesPerSeq), s * SHAPE.pagesPerSeq);
  return uploadU32(device, pt);
}

const matvecParams = (k: number, n: number, rowBytes: number, groupsX: number, o: { xStride?: number; rowsOnly?: boolean } = {}) =>
  paramsBuffer(device, MATVEC_PARAMS, { K: k, N: n, row_bytes: rowBytes, x_stride: o.xStride ?? k, y_stride: n, y_off: 0, groups_x: groupsX, rows_only: o.rowsOnly ? 1 : 0 });
const quantizeParams = (k: number) => paramsBuffer(device, QUANTIZE_PARAMS, { K: k, x_stride: k });

function expectClose(got: Float32Array, want: ArrayLike<number>, tol: number) {
  expect(got.length).toBe(want.length);
  let worst = 0, at = -1;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    if (!(err <= worst)) { worst = err; at = i; }
  }
  if (!(worst <= tol)) throw new Error(`max rel error ${worst} at ${at}: got ${got[at]}, want ${want[at]}`);
}


// [format, rows, k]: odd row counts everywhere; odd k for the float formats.
const MATVEC_CASES: [GGMLType, number, number][] = [
  [GGMLType.F32, 37, 50], [GGMLType.F32, 70, 288],
  [GGMLType.F16, 37, 51], [GGMLType.F16, 13, 96],
  [GGMLType.BF16, 37, 50],
  [GGMLType.Q8_0, 37, 96], [GGMLType.Q8_0, 301, 288],
  [GGMLType.Q4_0, 37, 96], [GGMLType.Q4_0, 65, 288],
  [GGMLType.Q4_1, 37, 96], [GGMLType.Q5_0, 37, 96], [GGMLType.Q5_1, 37, 96], [GGMLType.IQ4_NL, 37, 96],
  [GGMLType.Q5_0, 65, 288],
  [GGMLType.Q2_K, 19, 256], [GGMLType.Q2_K, 33, 512],
  [GGMLType.Q3_K, 19, 256], [GGMLType.Q3_K, 33, 768],
  [GGMLType.Q4_K, 19, 256], [GGMLType.Q4_K, 33, 512],
  [GGMLType.Q5_K, 19, 256], [GGMLType.Q5_K, 33, 512],
  [GGMLType.Q6_K, 19, 256], [GGMLType.Q6_K, 33, 512],
  [GGMLType.IQ4_XS, 19, 256], [GGMLType.IQ4_XS, 33, 768],
];

function refMatvec(w: Float32Array, x: Float32Array, n: number, k: number, m: number): Float64Array {
  const y = new Float64Array(m * n);
  for (let t = 0; t < m; t++) for (let r = 0; r < n; r++) {
    let s = 0;
    for (let i = 0; i < k; i++) s += w[r * k + i] * x[t * k + i];
    y[t * n + r] = s;
  }
  return y;
}

describe("matvec", () => {
  for (const [type, n, k] of MATVEC_CASES) {
    for (const tt of [1, 8]) {
      test(`${formatOf(type).name} ${n}x${k} tokens/tile ${tt}`, async () => {
        const rand = mulberry32(n * 1000 + k + tt);
        const m = tt === 1 ? 1 : 11;
        const wBytes = randomWeights(type, n, k, rand);
        const w = dequantizeRows(type, wBytes, n, k);
        const x = randn(m * k, rand);
        const rb = gpuRowBytes(type, k);
        const gpuW = toGpuRows(type, wBytes, n, k);
        const y0 = randn(m * n, rand);
        const bias = randn(n, rand);
        for (const mode of [0, 1]) {
          // the engine's configuration for this format and a wider one (8 lanes x 8 rows)
          const [tpr, rpw] = mode === 0 ? MATVEC_TILING : [8, 8];
          const [gx, gy] = foldGroups(Math.ceil(n / rpw));
          const p = matvecParams(k, n, rb, gx);
          const outputs: Float32Array[] = [];
          // activations from storage, and (rows of a multiple of 4) from a uniform buffer: the same sums
          for (const name of k % 4 === 0 ? ["matvec", "matvec_uniform"] as const : ["matvec"] as const) {
            const yBuf = uploadF32(device, y0);
            const k_ = host.get(name, { format: type, tileTokens: tt, mode: mode as 0 | 1, bias: mode === 0, threadsPerRow: tpr, rowsPerGroup: rpw });
            const xBuf = name === "matvec" ? uploadF32(device, x) : storageUniformBuffer(device, 2 * UNIFORM_X_BYTES);
            if (name === "matvec_uniform") device.queue.writeBuffer(xBuf, 0, new Float32Array(x));
            run(host, k_, [uploadBytes(device, gpuW), xBuf, yBuf, uploadF32(device, bias), state(0, m), p], [gx, gy, Math.ceil(m / tt)]);
            outputs.push(await readF32(device, yBuf, m * n));
          }
          // and without subgroups (every thread loads its own activations): the same sums
          {
            const yBuf = uploadF32(device, y0);
            const k_ = fallback.get("matvec", { format: type, tileTokens: tt, mode: mode as 0 | 1, bias: mode === 0, threadsPerRow: tpr, rowsPerGroup: rpw });
            run(fallback, k_, [uploadBytes(device, gpuW), uploadF32(device, x), yBuf, uploadF32(device, bias), state(0, m), p], [gx, gy, Math.ceil(m / tt)]);
            outputs.push(await readF32(device, yBuf, m * n));
          }
          const ref = refMatvec(w, x, n, k, m);
          const want = ref.map((v, i) => (mode === 0 ? v + bias[i % n] : v + y0[i]));
          expectClose(outputs[0], want, 2e-4);
          for (const other of outputs.slice(1)) expect(bitDiffs(other, outputs[0])).toEqual([]);
        }
      });
    }
  }

  for (const [tpr, rpw] of [[8, 8], MATVEC_TILING]) test(`gate/up SiLU fused (MODE 2) on Q8_0, several tokens, ${tpr} lanes x ${rpw} rows`, async () => {
    const rand = mulberry32(7);
    const n = 45, k = 64, m = 3;
    const wBytes = randomWeights(GGMLType.Q8_0, 2 * n, k, rand);
    const w = dequantizeRows(GGMLType.Q8_0, wBytes, 2 * n, k);
    const x = randn(m * k, rand);
    const yBuf = storageBuffer(device, 4 * m * n);
    const kern = host.get("matvec", { format: GGMLType.Q8_0, tileTokens: 8, mode: 2, bias: false, threadsPerRow: tpr, rowsPerGroup: rpw });
    const p = matvecParams(k, n, gpuRowBytes(GGMLType.Q8_0, k), Math.ceil(n / rpw));
    run(host, kern, [uploadBytes(device, toGpuRows(GGMLType.Q8_0, wBytes, 2 * n, k)), uploadF32(device, x), yBuf, uploadF32(device, new Float32Array(1)), state(0, m), p], [Math.ceil(n / rpw), 1, 1]);
    const ref = refMatvec(w, x, 2 * n, k, m);
    const want: number[] = [];
    for (let t = 0; t < m; t++) for (let r = 0; r < n; r++) {
      const g = ref[t * 2 * n + r], u = ref[t * 2 * n + n + r];
      want.push((g / (1 + Math.exp(-g))) * u);
    }
    expectClose(await readF32(device, yBuf, m * n), want, 2e-4);
  });

  test("rows_only computes the step's sampled rows (the output head), not its tokens", async () => {
    const rand = mulberry32(8);
    const n = 21, k = 64, m = 6, rows = 2;
    const wBytes = randomWeights(GGMLType.F32, n, k, rand);
    const x = randn(m * k, rand);
    const y0 = randn(m * n, rand);
    const yBuf = uploadF32(device, y0);
    const [tpr, rpw] = MATVEC_TILING;
    const kern = host.get("matvec", { format: GGMLType.F32, tileTokens: 1, mode: 0, bias: false, threadsPerRow: tpr, rowsPerGroup: rpw });
    const sampled = [0, 1].map((r): SampleRow => ({ token: 4 - r, slot: r, temperature: 0, topP: 1, draw: 0, wantLogprob: false, masked: false, topK: 0 }));
    run(host, kern, [uploadBytes(device, toGpuRows(GGMLType.F32, wBytes, n, k)), uploadF32(device, x), yBuf, uploadF32(device, new Float32Array(1)), step(tokensAt(0, m), sampled), matvecParams(k, n, 4 * k, 1, { rowsOnly: true })], [1, 1, rows]);
    const w = dequantizeRows(GGMLType.F32, wBytes, n, k);
    // rows 0 and 1 of X (the gathered rows) into rows 0 and 1 of Y; the rest untouched
    const got = await readF32(device, yBuf, m * n);
    expectClose(got.subarray(0, rows * n), refMatvec(w, x.subarray(0, rows * k), n, k, rows), 1e-5);
    expect(Array.from(got.subarray(rows * n))).toEqual(Array.from(y0.subarray(rows * n)));
  });
});

/** The first few elements that differ bit for bit (none when the kernel rounds like the reference). */
function bitDiffs(got: Float32Array, want: ArrayLike<number>): string[] {
  expect(got.length).toBe(want.length);
  const out: string[] = [];
  for (let i = 0; i < want.length && out.length < 3; i++) if (!Object.is(got[i], Math.fround(want[i]))) out.push(`#${i}: got ${got[i]}, want ${want[i]}`);
  return out;
}

// Bit for bit against llama.cpp's arithmetic (test/support/cpu-arith.ts): activations quantized
// by quantize_row_q8_0, then its eight-lane (order 0) or repacked block-by-block (order 1) dot.
describe("matvec on Q8_0 activations, rounded as llama.cpp's CPU kernels", () => {
  const CASES: [GGMLType, number, number, 0 | 1][] = [
    [GGMLType.Q8_0, 37, 96, 0], [GGMLType.Q8_0, 301, 288, 0],
    [GGMLType.Q4_0, 37, 96, 0], [GGMLType.Q4_0, 64, 288, 1], [GGMLType.Q4_0, 65, 96, 1],
    [GGMLType.Q5_0, 37, 288, 0], [GGMLType.Q4_1, 64, 288, 0], [GGMLType.Q5_1, 37, 288, 0],
    [GGMLType.IQ4_NL, 37, 96, 0], [GGMLType.IQ4_NL, 40, 768, 1],
  ];
  // [tokens per tile, rows per thread, kernel]: decode runs two rows per thread, activations in a uniform buffer
  const TILES: [number, number, "matvec_q8" | "matvec_q8_uniform"][] = [[1, 1, "matvec_q8"], [1, 2, "matvec_q8"], [8, 1, "matvec_q8"], [1, 2, "matvec_q8_uniform"], [8, 1, "matvec_q8_uniform"]];
  for (const [type, n, k, order] of CASES) {
    for (const [tt, rpt, name, h] of TILES.flatMap(([tt, rpt, name]) => [[tt, rpt, name, "subgroups"], [tt, rpt, name, "fallback"]] as const)) {
      test(`${formatOf(type).name} ${n}x${k} order ${order}, ${tt} tokens per tile, ${rpt} rows per thread (${name}, ${h})`, async () => {
        const kh = h === "subgroups" ? host : fallback;
        const rand = mulberry32(n * 7 + k + tt);
        const m = tt === 1 ? 1 : 11;
        const wBytes = randomWeights(type, n, k, rand);
        const wq = blockQuants(type, wBytes, n, k);
        const x = randn(m * k, rand);
        // larger than a uniform binding (as a big model's is): the uniform kernel binds its first 64 KB
        const xq = storageUniformBuffer(device, Math.max(2 * UNIFORM_X_BYTES, 4 * Q8_BLOCK_WORDS * m * k / 32));
        run(kh, kh.get("quantize_q8"), [uploadF32(device, x), xq, quantizeParams(k)], [1, m]);
        const yBuf = storageBuffer(device, 4 * m * n);
        const rpw = 64;
        const kern = kh.get(name, { format: type, tileTokens: tt, rowsPerThread: rpt, threadsPerGroup: rpw, order, mode: 0, bias: false, nativeFma: false });
        const [gx, gy] = foldGroups(Math.ceil(n / (rpw * rpt)));
        run(kh, kern, [uploadBytes(device, toGpuRows(type, wBytes, n, k)), xq, yBuf, uploadF32(device, new Float32Array(1)), state(0, m), matvecParams(k, n, gpuRowBytes(type, k), gx)], [gx, gy, Math.ceil(m / tt)]);
        const want: number[] = [];
        for (let t = 0; t < m; t++) {
          const a = quantizeRowQ8(x.subarray(t * k, (t + 1) * k));
          for (let r = 0; r < n; r++) want.push(dotQ8Row(order, wq, r, a));
        }
        expect(bitDiffs(await readF32(device, yBuf, m * n), want)).toEqual([]);
      });
    }
  }

  test("gate|up rows with ggml's silu, and the residual add (prefill tile; decode, two rows per thread)", async () => {
    const rand = mulberry32(99);
    const n = 40, k = 64, m = 3;
    const wBytes = randomWeights(GGMLType.Q8_0, 2 * n, k, rand);
    const wq = blockQuants(GGMLType.Q8_0, wBytes, 2 * n, k);
    const x = randn(m * k, rand, 3);
    const xq = storageUniformBuffer(device, UNIFORM_X_BYTES);
    run(host, host.get("quantize_q8"), [uploadF32(device, x), xq, quantizeParams(k)], [1, m]);
    const y0 = randn(m * n, rand);
    const cases = [[1, 8, 1, "matvec_q8"], [2, 8, 1, "matvec_q8"], [1, 1, 2, "matvec_q8"], [2, 1, 2, "matvec_q8"], [1, 1, 2, "matvec_q8_uniform"], [2, 1, 2, "matvec_q8_uniform"]] as const;
    for (const [mode, tt, rpt, name] of cases) {
      const yBuf = uploadF32(device, y0);
      const kern = host.get(name, { format: GGMLType.Q8_0, tileTokens: tt, rowsPerThread: rpt, threadsPerGroup: 64, mode, order: 0, bias: false, nativeFma: false });
      run(host, kern, [uploadBytes(device, toGpuRows(GGMLType.Q8_0, wBytes, 2 * n, k)), xq, yBuf, uploadF32(device, new Float32Array(1)), state(0, m), matvecParams(k, n, gpuRowBytes(GGMLType.Q8_0, k), 1)], [1, 1, Math.ceil(m / tt)]);
      const want: number[] = [];
      for (let t = 0; t < m; t++) {
        const a = quantizeRowQ8(x.subarray(t * k, (t + 1) * k));
        for (let r = 0; r < n; r++) {
          const g = dotQ8Row(0, wq, r, a);
          want.push(mode === 1 ? Math.fround(g + y0[t * n + r]) : Math.fround(siluGgml(g) * dotQ8Row(0, wq, r + n, a)));
        }
      }
      expect(bitDiffs(await readF32(device, yBuf, m * n), want)).toEqual([]);
    }
  });
});

describe("K-quant matvec on Q8_K blocks, rounded as llama.cpp's x86 kernels", () => {
  // [format, rows, K, tokens, tokens in fours]: Q4_K as its repacked kernels (one-row gemv;
  // four-row gemm for the rows a batch takes in fours), Q6_K as its vec_dot
  const CASES: [GGMLType, number, number, number, number][] = [
    [GGMLType.Q4_K, 40, 256, 1, 0], [GGMLType.Q4_K, 72, 768, 3, 0], [GGMLType.Q4_K, 72, 768, 6, 4],
    [GGMLType.Q6_K, 37, 256, 1, 0], [GGMLType.Q6_K, 70, 768, 3, 0], [GGMLType.Q6_K, 70, 768, 5, 4],
  ];
  for (const [type, n, k, m, fours] of CASES) {
    for (const [label, h] of [["subgroups", () => host], ["fallback", () => fallback]] as const) {
      test(`${formatOf(type).name} ${n}x${k}, ${m} token(s)${fours ? `, ${fours} in fours` : ""}, bit for bit (${label})`, async () => {
        const kh = h();
        const rand = mulberry32(n + k + m);
        const wBytes = randomWeights(type, n, k, rand);
        const x = randn(m * k, rand, 2);
        const xk = storageBuffer(device, 4 * m * k);
        const xkb = storageBuffer(device, 4 * 65 * m * (k / 256));
        run(kh, kh.get("quantize_q8k"), [uploadF32(device, x), xk, quantizeParams(k), xkb], [1, m]);
        const y = storageBuffer(device, 4 * m * n);
        const kern = kh.get("matvec_q8k", { format: type, mode: 0, bias: false, tileTokens: 1 });
        const toks = tokensAt(0, m).map((t, i) => ({ ...t, inFour: i < fours }));
        run(kh, kern, [uploadBytes(device, toGpuRows(type, wBytes, n, k)), xkb, y, uploadF32(device, new Float32Array(1)), step(toks), matvecParams(k, n, gpuRowBytes(type, k), 1)], [Math.ceil(n / 64), 1, m]);
        const rb = formatOf(type).blockBytes * (k / 256);
        const want: number[] = [];
        for (let t = 0; t < m; t++) {
          const a = quantizeRowQ8K(x.subarray(t * k, (t + 1) * k));
          for (let r = 0; r < n; r++) {
            const row = wBytes.subarray(r * rb, (r + 1) * rb);
            want.push(type === GGMLType.Q4_K ? dotQ4KRepacked(row, a, t < fours) : dotQ6KVecDot(row, a));
          }
        }
        expect(bitDiffs(await readF32(device, y, m * n), want)).toEqual([]);
      });
    }
  }
});

// What lets the engine batch sequences without changing their tokens: the variant a step of 16
// tokens runs (tiles of tokens sharing weight loads) gives each token the same bits as the one
// a lone decode token runs, for the integer-dot orders and for the float kernel.
describe("products are batch-invariant: one token alone = the same token in a 16-token step", () => {
  const CASES: [GGMLType, number, number, boolean][] = [
    [GGMLType.Q8_0, 45, 288, true], [GGMLType.Q4_0, 64, 288, true], [GGMLType.F32, 37, 96, false], [GGMLType.Q4_K, 33, 256, false],
    [GGMLType.Q5_1, 40, 288, true], [GGMLType.IQ4_NL, 64, 288, true], [GGMLType.Q3_K, 33, 256, false],
  ];
  for (const [type, n, k, q8] of CASES) {
    for (const mode of [0, 1] as const) {
      test(`${formatOf(type).name} ${n}x${k} ${q8 ? "integer dots" : "float"}, mode ${mode}`, async () => {
        const rand = mulberry32(n + k + mode);
        const m = 16;
        const wBytes = randomWeights(type, n, k, rand);
        const x = randn(m * k, rand);
        const y0 = randn(m * n, rand);
        const shape: ProductShape = { mat: { type, n, k, name: "blk.0.ffn_down.weight" }, mode, xStride: k, bias: false, q8 };
        const w = uploadBytes(device, toGpuRows(type, wBytes, n, k));
        const rowBytes = gpuRowBytes(type, k);
        /** The engine's kernel for a `count`-token step over these tokens' activations. */
        const product = async (xs: Float32Array, ys: Float32Array, count: number) => {
          const pk = productKernel(shape, count);
          const kern = productPipeline(host, pk);
          let act = storageUniformBuffer(device, Math.max(UNIFORM_X_BYTES, 4 * xs.length));
          device.queue.writeBuffer(act, 0, new Float32Array(xs));
          if (q8) {
            const xq = storageUniformBuffer(device, Math.max(UNIFORM_X_BYTES, 4 * Q8_BLOCK_WORDS * count * k / 32));
            run(host, host.get("quantize_q8"), [act, xq, quantizeParams(k)], [1, count]);
            act = xq;
          }
          const yBuf = uploadF32(device, ys);
          const grid = productGrid(pk, n, count);
          run(host, kern, [w, act, yBuf, uploadF32(device, new Float32Array(1)), state(0, count), matvecParams(k, n, rowBytes, foldGroups(Math.ceil(n / MATVEC_TILING[1]))[0])], grid);
          return readF32(device, yBuf, count * n);
        };
        expect(productKernel(shape, m).variant.tileTokens).toBeGreaterThan(1);
        const batched = await product(x, y0, m);
        for (const t of [0, 5, 15]) {
          const alone = await product(x.subarray(t * k, (t + 1) * k), y0.subarray(t * n, (t + 1) * n), 1);
          expect(bitDiffs(alone, batched.subarray(t * n, (t + 1) * n))).toEqual([]);
        }
      });
    }
  }
});

describe("embedding lookup", () => {
  for (const [type, k] of [[GGMLType.F32, 50], [GGMLType.F16, 51], [GGMLType.BF16, 40], [GGMLType.Q8_0, 96], [GGMLType.Q4_0, 64], [GGMLType.Q4_K, 256], [GGMLType.Q6_K, 256],
    [GGMLType.Q4_1, 64], [GGMLType.Q5_0, 64], [GGMLType.Q5_1, 64], [GGMLType.IQ4_NL, 64],
    [GGMLType.Q2_K, 256], [GGMLType.Q3_K, 256], [GGMLType.Q5_K, 256], [GGMLType.IQ4_XS, 256]] as [GGMLType, number][]) {
    test(`${formatOf(type).name} k=${k}, table split in two parts, one token fed`, async () => {
      const rand = mulberry32(k);
      const rows = 23;
      const wBytes = randomWeights(type, rows, k, rand);
      const w = dequantizeRows(type, wBytes, rows, k);
      const rb = gpuRowBytes(type, k);
      const gpuW = toGpuRows(type, wBytes, rows, k);
      const ids = [0, 22, 5, 11, 12];
      const xBuf = storageBuffer(device, 4 * ids.length * k);
      const kern = host.get("embed", { format: type });
      // token 3 is fed: its id (11) comes from FED[slot 2], where a previous step's sampler left it
      const fed = uploadU32(device, new Uint32Array([7, 7, 11, 7]));
      const idBuf = step(ids.map((id, t): StepToken => (t === 3 ? { id: 0, pos: t, slot: 2, fed: true } : { id, pos: t, slot: 0, fed: false })));
      // split where the uploader would: on a whole group of interleaved rows (Q8_0 / Q4_0: 8)
      const g = rowGroup(type), split = Math.ceil(12 / g) * g;
      for (const [r0, nr] of [[0, split], [split, rows - split]]) {
        const p = paramsBuffer(device, EMBED_PARAMS, { K: k, row_bytes: rb, row0: r0, rows: nr, x_stride: k, scale: 1.5 });
        run(host, kern, [uploadBytes(device, gpuW.subarray(r0 * rb, (r0 + Math.ceil(nr / g) * g) * rb)), idBuf, fed, xBuf, p], [Math.ceil(Math.ceil(k / 32) / 64), ids.length]);
      }
      const want = ids.flatMap((id) => [...w.subarray(id * k, (id + 1) * k)].map((v) => v * 1.5));
      expectClose(await readF32(device, xBuf, ids.length * k), want, 1e-6);
    });
  }
});

function refRmsnorm(x: Float32Array, w: Float32Array, n: number, eps: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let g = 0; g < x.length / n; g++) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[g * n + i] ** 2;
    const s = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) out[g * n + i] = x[g * n + i] * s * w[i];
  }
  return out;
}

describe("rmsnorm", () => {
  // every form: one SIMD group (CPU adapters), a workgroup of 64 with subgroups, and without
  const FORMS = [["one SIMD group", () => host], ["workgroup of 64", () => gpuStyle], ["fallback", () => fallback]] as const;
  const normOf = (h: KernelHost, v: Partial<NormVariant> = {}) => normKernel(h, { inPlace: false, q8Out: false, ...v });
  const normParams = (n: number, groupStride: number, stride: number, eps: number, gather = false) =>
    paramsBuffer(device, NORM_PARAMS, { n, group_stride: groupStride, x_stride: stride, y_stride: stride, eps, gather: gather ? 1 : 0, off: 0 });

  test("rows of 289, 3 tokens: within 1e-5 of the reference, and the same floats in every form", async () => {
    const rand = mulberry32(3);
    const n = 289, m = 3;
    const x = randn(n * m, rand), w = randn(n, rand);
    const outputs: Float32Array[] = [];
    for (const [, h] of FORMS) {
      const y = storageBuffer(device, 4 * n * m);
      run(h(), normOf(h()), [uploadF32(device, x), y, uploadF32(device, w), state(0, m), normParams(n, 0, n, 1e-5), storageBuffer(device, 16)], [1, m]);
      outputs.push(await readF32(device, y, n * m));
    }
    expectClose(outputs[0], refRmsnorm(x, w, n, 1e-5), 1e-5);
    for (const other of outputs.slice(1)) expect(bitDiffs(other, outputs[0])).toEqual([]);
  });

  test("gather: output row r normalizes the token of sampled row r (the output norm), in every form", async () => {
    const rand = mulberry32(32);
    const n = 288, m = 5;
    const x = randn(n * m, rand), w = randn(n, rand);
    const picked = [3, 0, 4];
    const rows = picked.map((token, r): SampleRow => ({ token, slot: r, temperature: 0, topP: 1, draw: 0, wantLogprob: false, masked: false, topK: 0 }));
    const want = new Float32Array(n * picked.length);
    picked.forEach((t, r) => want.set(refRmsnorm(x.subarray(t * n, (t + 1) * n), w, n, 1e-5), r * n));
    for (const [, h] of FORMS) {
      const y = storageBuffer(device, 4 * n * m);
      run(h(), normOf(h()), [uploadF32(device, x), y, uploadF32(device, w), step(tokensAt(0, m), rows), normParams(n, 0, n, 1e-5, true), storageBuffer(device, 16)], [1, picked.length]);
      expectClose(await readF32(device, y, n * picked.length), want, 1e-5);
    }
  });

  for (const [label, h] of FORMS.slice(0, 2)) {
    test(`with Q8_OUT, the normalized rows also as Q8_0 blocks, the same as quantize_q8 writes (${label})`, async () => {
      const rand = mulberry32(31);
      const n = 288, m = 3;
      const x = randn(n * m, rand), w = randn(n, rand);
      const y = storageBuffer(device, 4 * n * m);
      const xqNorm = storageBuffer(device, 4 * Q8_BLOCK_WORDS * m * n / 32), xqSep = storageBuffer(device, 4 * Q8_BLOCK_WORDS * m * n / 32);
      run(h(), normOf(h(), { q8Out: true }), [uploadF32(device, x), y, uploadF32(device, w), state(0, m), normParams(n, 0, n, 1e-5), xqNorm], [1, m]);
      run(host, host.get("quantize_q8"), [y, xqSep, quantizeParams(n)], [1, m]);
      const xqBytes = 4 * Q8_BLOCK_WORDS * m * n / 32;
      const [a, b] = [new Uint32Array(await readBuffer(device, xqNorm, xqBytes)), new Uint32Array(await readBuffer(device, xqSep, xqBytes))];
      expect(a.some((v) => v !== 0)).toBe(true);
      expect(Array.from(a)).toEqual(Array.from(b));
      // the rows themselves are the norm's, and those blocks are llama.cpp's quantization of them
      const yv = await readF32(device, y, n * m);
      expectClose(yv, refRmsnorm(x, w, n, 1e-5), 1e-5);
      for (let t = 0; t < m; t++) {
        const q = quantizeRowQ8(yv.subarray(t * n, (t + 1) * n));
        for (let blk = 0; blk < n / 32; blk++) expect(new Float32Array(a.buffer, 4 * ((t * n / 32 + blk) * Q8_BLOCK_WORDS + 8), 1)[0]).toBe(q.d[blk]);
      }
    });

    test(`per-head in place (qk-norm), heads of 40 inside a wider row (${label})`, async () => {
      const rand = mulberry32(4);
      const hd = 40, heads = 5, stride = 260, m = 2;
      const x = randn(stride * m, rand), w = randn(hd, rand);
      const y = uploadF32(device, x);
      run(h(), normOf(h(), { inPlace: true }), [storageBuffer(device, 16), y, uploadF32(device, w), state(0, m), normParams(hd, hd, stride, 1e-6), storageBuffer(device, 16)], [heads, m]);
      const got = await readF32(device, y, stride * m);
      const want = Float32Array.from(x);
      for (let t = 0; t < m; t++) want.set(refRmsnorm(x.subarray(t * stride, t * stride + hd * heads), w, hd, 1e-6), t * stride);
      expectClose(got, want, 1e-5);
    });
  }
});

function refRope(v: Float32Array, hd: number, pos: number, freq: Float32Array, neox: boolean, nRot = hd): Float32Array {
  const out = Float32Array.from(v);
  for (let h = 0; h < v.length / hd; h++) for (let j = 0; j < nRot / 2; j++) {
    const [a, b] = neox ? [j, j + nRot / 2] : [2 * j, 2 * j + 1];
    const th = Math.fround(pos * freq[j]);
    const x0 = v[h * hd + a], x1 = v[h * hd + b];
    out[h * hd + a] = x0 * Math.cos(th) - x1 * Math.sin(th);
    out[h * hd + b] = x0 * Math.sin(th) + x1 * Math.cos(th);
  }
  return out;
}

describe("rope + kv write, attention (through page tables)", () => {
  const PAGE = SHAPE.pageSize;
  for (const [neox, nRot] of [[false, 18], [true, 18], [false, 10], [true, 12]] as const) {
    for (const [label, h] of [["f16 cache", () => host], ["f32 cache fallback", () => fallback]] as const) {
      const partial = nRot < 18 ? `, ${nRot} of 18 dimensions rotated` : "";
      test(`rope ${neox ? "neox" : "norm"} with GQA heads, two sequences' tokens into their own pages${partial} (${label})`, async () => {
        const rand = mulberry32((neox ? 5 : 6) + nRot);
        const nh = 6, nkv = 2, hd = 18, pages = 4, nctx = 32;
        const qd = nh * hd, kvd = nkv * hd, stride = qd + 2 * kvd;
        // slot 0's positions 0-15 in page 3, 16-31 in page 0; slot 1's in pages 2, 1
        const tables = [[3, 0], [2, 1]];
        const rowOf = (slot: number, pos: number) => tables[slot][Math.floor(pos / PAGE)] * PAGE + (pos % PAGE);
        const toks: StepToken[] = [...tokensAt(15, 2, 0), ...tokensAt(20, 1, 1)];
        const m = toks.length;
        const qkv = randn(stride * m, rand);
        const freq = new Float32Array(nRot / 2);
        for (let j = 0, f = 1; j < nRot / 2; j++, f = Math.fround(f * Math.fround(10000 ** (-2 / nRot)))) freq[j] = f;
        const qkvBuf = uploadF32(device, qkv);
        const kc = storageBuffer(device, 4 * pages * PAGE * kvd), vc = storageBuffer(device, 4 * pages * PAGE * kvd);
        const k = h().get("rope");
        const total = (nh + nkv) * hd / 2 + kvd;
        const params = paramsBuffer(device, ROPE_PARAMS, { n_head: nh, n_head_kv: nkv, head_dim: hd, qkv_stride: stride, kv_dim: kvd, neox: neox ? 1 : 0, n_rot: nRot });
        const table = padRope(ropeTable(10000 ** (-2 / nRot), new Float32Array(nRot / 2).fill(1), nctx), nctx, nRot, hd);
        run(h(), k, [qkvBuf, kc, vc, uploadF32(device, table), step(toks), params, pageTable((s) => tables[s] ?? [])], [Math.ceil(total / 64), m]);
        const got = await readF32(device, qkvBuf, stride * m);
        const f16 = h().features.shaderF16;
        const kvRead = async (b: GPUBuffer) => {
          const raw = await readBuffer(device, b, (f16 ? 2 : 4) * pages * PAGE * kvd);
          const u = f16 ? new Uint16Array(raw) : null;
          return f16 ? Float32Array.from(u!, halfToFloat) : new Float32Array(raw);
        };
        const kGot = await kvRead(kc), vGot = await kvRead(vc);
        toks.forEach((tok, t) => {
          const row = qkv.subarray(t * stride, (t + 1) * stride);
          expectClose(got.subarray(t * stride, t * stride + qd), refRope(row.subarray(0, qd), hd, tok.pos, freq, neox, nRot), 1e-5);
          const r = rowOf(tok.slot, tok.pos);
          expectClose(kGot.subarray(r * kvd, (r + 1) * kvd), refRope(row.subarray(qd, qd + kvd), hd, tok.pos, freq, neox, nRot).map(roundF16), 1e-3);
          expectClose(vGot.subarray(r * kvd, (r + 1) * kvd), row.subarray(qd + kvd).map(roundF16), 1e-3);
        });
      });
    }
  }

  for (const [label, h] of [["f16 cache, one SIMD group", () => host], ["f32 cache, one SIMD group", () => lanesF32], ["f16 cache, workgroup of 64", () => gpuStyle], ["f32 cache, shared-memory fallback", () => fallback]] as const) {
    // [cached, new, head dim, window, q scale, soft-cap]: the last three gemma's and phi3's
    const cases = [[0, 1, 20, 0, 1, 0], [300, 3, 20, 0, 1, 0], [40, 5, 20, 0, 1, 0], [200, 1, 48, 0, 1, 0], [70, 2, 80, 0, 1, 0], [290, 2, 48, 0, 1, 0],
      [40, 5, 20, 21, 1, 0], [290, 2, 48, 100, 0.3, 0], [70, 2, 80, 0, 1, 2.5], [70, 2, 128, 0, 1, 0], [130, 1, 256, 0, 1, 0], [60, 1, 96, 0, 1, 0]] as const;
    for (const [ctx0, m, hd, window, qScale, softcap] of cases) {
      const extra = [window && `window ${window}`, qScale !== 1 && `q scaled by ${qScale}`, softcap && `soft-cap ${softcap}`].filter(Boolean).join(", ");
      test(`attention GQA 8 heads / 2 kv heads, head dim ${hd}, ${ctx0} cached + ${m} new, beside another sequence's token${extra ? ` (${extra})` : ""} (${label})`, async () => {
        const rand = mulberry32(ctx0 + m);
        const nh = 8, nkv = 2, pages = 64;
        const qd = nh * hd, kvd = nkv * hd, stride = qd + 2 * kvd;
        const f16 = h().features.shaderF16;
        const kv = (n: number) => randn(n, rand).map(roundF16);
        // the pool, in cache rows; slot 0 holds the even pages from the top down, slot 1 the odd ones in order
        const kAll = kv(pages * PAGE * kvd), vAll = kv(pages * PAGE * kvd);
        const tables = [Array.from({ length: 32 }, (_, i) => 62 - 2 * i), Array.from({ length: 32 }, (_, i) => 2 * i + 1)];
        const rowOf = (slot: number, pos: number) => tables[slot][Math.floor(pos / PAGE)] * PAGE + (pos % PAGE);
        const toks: StepToken[] = [...tokensAt(ctx0, m, 0), ...tokensAt((ctx0 * 3 + 17) % 480, 1, 1)];
        const enc = (a: Float32Array) => f16 ? uploadBytes(device, new Uint8Array(Uint16Array.from(a, floatToHalf).buffer)) : uploadF32(device, a);
        const qkv = randn(stride * toks.length, rand);
        const out = storageBuffer(device, 4 * qd * toks.length);
        const k = attentionKernel(h(), hd);
        const scale = (qScale === 1 ? 1 / Math.sqrt(hd) : 1) / (softcap || 1);
        const params = paramsBuffer(device, ATTENTION_PARAMS, { n_head: nh, n_head_kv: nkv, head_dim: hd, qkv_stride: stride, kv_dim: kvd, out_stride: qd, scale, q_scale: qScale, softcap, window });
        run(h(), k, [uploadF32(device, qkv), enc(kAll), enc(vAll), out, step(toks), params, pageTable((s) => tables[s] ?? [])], [nh, toks.length]);
        const want = new Float32Array(qd * toks.length);
        toks.forEach((tok, t) => {
          for (let hh = 0; hh < nh; hh++) {
            const kvh = Math.floor(hh / (nh / nkv));
            // the keys a window leaves the query at pos: pos - key < window
            const first = window && tok.pos + 1 > window ? tok.pos + 1 - window : 0;
            const rows = (all: Float32Array) => Array.from({ length: tok.pos + 1 - first }, (_, i) => {
              const r = rowOf(tok.slot, first + i);
              return all.subarray(r * kvd + kvh * hd, r * kvd + (kvh + 1) * hd);
            });
            const q = qkv.subarray(t * stride + hh * hd, t * stride + (hh + 1) * hd).map((v) => Math.fround(v * Math.fround(qScale)));
            want.set(flashAttentionHead(q, rows(kAll), rows(vAll), Math.fround(scale), softcap), t * qd + hh * hd);
          }
        });
        const got = await readF32(device, out, qd * toks.length);
        // the device's tanh is not the C library's: soft-capped scores agree to a few ulps, which
        // the f16 accumulator can turn into one half's rounding step (2^-11 relative)
        if (softcap) expectClose(got, want, 1e-3);
        else expect(bitDiffs(got, want)).toEqual([]);
      });
    }
  }
});

describe("sampling", () => {
  interface RowSettings { temperature: number; topP: number; u: number; wantLogprob?: boolean; mask?: Uint32Array; topK?: number }

  /**
   * The mask pass (rows with a mask) and both sampler passes (per-chunk partials, then the pick)
   * as the engine records them, over one row of logits per sampled row; row r samples into slot
   * r + 1's FED cell. Returns each row's id and logprob, and what each slot's FED cell holds.
   */
  async function sampleRows(h: KernelHost, logits: Float32Array[], settings: RowSettings[]) {
    const n = logits[0].length, rowsN = logits.length;
    const all = new Float32Array(n * rowsN);
    logits.forEach((l, r) => all.set(l, r * n));
    const logitsBuf = uploadF32(device, all);
    const out = storageBuffer(device, 8 * rowsN);
    const fed = uploadU32(device, new Uint32Array(rowsN + 1).fill(0xFFFFFFFF));
    const rows = settings.map((o, r): SampleRow => ({ token: r, slot: r + 1, temperature: o.temperature, topP: o.topP, draw: o.u, wantLogprob: o.wantLogprob ?? true, masked: !!o.mask, topK: o.topK ?? 0 }));
    const stepBuf = step(tokensAt(0, rowsN), rows);
    const words = Math.ceil(n / 32);
    const masks = new Uint32Array(words * rowsN);
    settings.forEach((o, r) => { if (o.mask) masks.set(o.mask, r * words); });
    const partials = storageBuffer(device, 16 * 256 * SAMPLE_GROUPS * rowsN);
    const params = paramsBuffer(device, SAMPLE_PARAMS, { n_vocab: n });
    const enc = device.createCommandEncoder();
    const dispatch = (k: Kernel, buffers: GPUBuffer[], grid: [number, number, number]) => {
      const pass = enc.beginComputePass();
      pass.setPipeline(k.pipeline);
      pass.setBindGroup(0, h.bind(k, buffers));
      pass.dispatchWorkgroups(...grid);
      pass.end();
    };
    if (settings.some((o) => o.mask)) {
      dispatch(h.get("mask_logits"), [logitsBuf, uploadU32(device, masks), paramsBuffer(device, MASK_PARAMS, { n_vocab: n, words }), stepBuf], [Math.ceil(n / 256), rowsN, 1]);
    }
    dispatch(h.get("sample_partial"), [logitsBuf, partials, params, stepBuf], [SAMPLE_GROUPS, rowsN, 1]);
    dispatch(h.get("sample"), [logitsBuf, out, fed, stepBuf, params, partials], [1, rowsN, 1]);
    const top = storageBuffer(device, 8 * MAX_TOP_LOGPROBS * rowsN);
    dispatch(h.get("top_logprobs"), [logitsBuf, top, stepBuf, params, partials], [1, rowsN, 1]);
    device.queue.submit([enc.finish()]);
    const o = new Uint32Array(await readBuffer(device, out, 8 * rowsN));
    const lp = new Float32Array(o.buffer);
    const t = new Uint32Array(await readBuffer(device, top, 8 * MAX_TOP_LOGPROBS * rowsN));
    const tlp = new Float32Array(t.buffer);
    const tops = settings.map((o, r) => Array.from({ length: o.topK ?? 0 }, (_, j) => ({ id: t[2 * (r * MAX_TOP_LOGPROBS + j)], logprob: tlp[2 * (r * MAX_TOP_LOGPROBS + j) + 1] })));
    return { picks: settings.map((_, r) => ({ id: o[2 * r], logprob: lp[2 * r + 1] })), fed: [...new Uint32Array(await readBuffer(device, fed, 4 * (rowsN + 1)))], tops };
  }

  /** One row: its id, logprob, and the id fed to its slot. */
  async function sample(h: KernelHost, logits: Float32Array, temperature: number, topP: number, u: number, wantLogprob = true) {
    const r = await sampleRows(h, [logits], [{ temperature, topP, u, wantLogprob }]);
    return { ...r.picks[0], next: r.fed[1] };
  }
  function logSoftmax(l: Float32Array, i: number) {
    const mx = l.reduce((a, b) => Math.max(a, b), -Infinity);
    let z = 0;
    for (const v of l) z += Math.exp(v - mx);
    return l[i] - mx - Math.log(z);
  }

  for (const [label, h] of [["subgroups", () => host], ["fallback", () => fallback]] as const) {
    test(`top logprobs: the k best in logit order, ties by id, masked ids never listed (${label})`, async () => {
      const rand = mulberry32(5);
      const n = 32003;
      const l = randn(n, rand, 3);
      // a tie at the top across far-apart ids, and one lower down
      l[30001] = 8; l[12] = 8; l[2049] = 8; l[500] = 7; l[31999] = 7;
      const masked = Float32Array.from(l, (v, i) => (i % 5 === 0 ? v : -3.4e38));
      const order = (x: Float32Array) => [...x.keys()].sort((a, b) => x[b] - x[a] || a - b);
      const lse = (x: Float32Array) => { const m = x.reduce((a, b) => Math.max(a, b), -Infinity); let z = 0; for (const v of x) if (v > -3e38) z += Math.exp(v - m); return m + Math.log(z); };
      const few = new Float32Array(n).fill(-3.4e38);
      few.set([1, 3, 2]);
      const r = await sampleRows(h(), [l, masked, l, few], [
        { temperature: 0, topP: 1, u: 0.5, topK: 20 },
        { temperature: 0, topP: 1, u: 0.5, topK: 7 },
        { temperature: 0, topP: 1, u: 0.5 },
        { temperature: 0, topP: 1, u: 0.5, topK: 5 },
      ]);
      const want = (x: Float32Array, k: number) => order(x).slice(0, k);
      expect(r.tops[0].map((t) => t.id)).toEqual(want(l, 20));
      expect(r.tops[0].slice(0, 5).map((t) => t.id)).toEqual([12, 2049, 30001, 500, 31999]);
      r.tops[0].forEach((t) => expect(Math.abs(t.logprob - (l[t.id] - lse(l)))).toBeLessThan(1e-4));
      expect(r.tops[0][0]).toEqual(r.picks[0]);
      const mw = want(masked, 7);
      expect(mw.every((i) => i % 5 === 0)).toBe(true);
      expect(r.tops[1].map((t) => t.id)).toEqual(mw);
      r.tops[1].forEach((t) => expect(Math.abs(t.logprob - (masked[t.id] - lse(masked)))).toBeLessThan(1e-4));
      expect(r.tops[2]).toEqual([]);
      // only three ids are allowed: the list ends after them
      expect(r.tops[3].map((t) => t.id)).toEqual([1, 2, 0, 0xFFFFFFFF, 0xFFFFFFFF]);
    });

    test(`greedy argmax over 32003 logits, lowest id on ties, logprob (${label})`, async () => {
      const rand = mulberry32(11);
      const l = randn(32003, rand, 5);
      l[31000] = 9; l[777] = 9;
      const r = await sample(h(), l, 0, 1, 0.5);
      expect(r.id).toBe(777);
      expect(r.next).toBe(777);
      expect(Math.abs(r.logprob - logSoftmax(l, 777))).toBeLessThan(1e-4);
    });
  }

  // [vocabulary, ids set to the maximum, the lowest of them]: ties within one thread's strided
  // share of the first pass (ids 2048 apart), between adjacent threads, between partials far
  // apart, and a vocabulary far larger than the first pass's threads.
  const TIES: [number, number[], number][] = [
    [32000, [6148, 4100, 30000, 4101], 4100],
    [32000, [4096, 2048], 2048],
    [32000, [2048, 2047], 2047],
    [5000, [4999], 4999],
    [530001, [530000, 270000, 269999], 269999],
  ];
  for (const [n, at, want] of TIES) {
    test(`greedy over ${n} logits with the maximum at ${at.join(", ")} picks ${want}`, async () => {
      const rand = mulberry32(n + at[0]);
      const l = randn(n, rand, 5);
      for (const i of at) l[i] = 7.5;
      for (const wantLogprob of [true, false]) {
        const r = await sample(host, l, 0, 1, 0.5, wantLogprob);
        expect(r.id).toBe(want);
        expect(r.next).toBe(want);
        if (wantLogprob) expect(Math.abs(r.logprob - logSoftmax(l, want))).toBeLessThan(1e-4);
        else expect(r.logprob).toBe(0);
      }
    });
  }

  test("constrained: logits masked to the lowest finite float are never picked or counted", async () => {
    const rand = mulberry32(21);
    const n = 9000;
    const l = randn(n, rand, 2);
    const allowed = Array.from({ length: n }, (_, i) => i % 3 === 0 && i !== 4095); // 4095: a chunk's last id
    const masked = Float32Array.from(l, (v, i) => (allowed[i] ? v : -3.4e38));
    const r = await sample(host, masked, 0, 1, 0.5);
    const keptIds = [...allowed.keys()].filter((i) => allowed[i]);
    const best = keptIds.reduce((a, i) => (l[i] > l[a] ? i : a), keptIds[0]);
    expect(r.id).toBe(best);
    const kept = Float32Array.from(keptIds, (i) => l[i]);
    expect(Math.abs(r.logprob - logSoftmax(kept, keptIds.indexOf(best)))).toBeLessThan(1e-4);
  });

  test("the GPU mask (mask_logits) on one row of two: the masked row picks the best allowed id, the other its own argmax", async () => {
    const rand = mulberry32(22);
    const n = 5000;
    const l = randn(n, rand, 2);
    const allowed = Array.from({ length: n }, (_, i) => i % 7 === 3);
    const mask = new Uint32Array(Math.ceil(n / 32));
    allowed.forEach((ok, i) => { if (ok) mask[i >> 5] |= 1 << (i & 31); });
    const r = await sampleRows(host, [l, l], [{ temperature: 0, topP: 1, u: 0.5, mask }, { temperature: 0, topP: 1, u: 0.5 }]);
    const keptIds = [...allowed.keys()].filter((i) => allowed[i]);
    const argmax = (ids: number[]) => ids.reduce((a, i) => (l[i] > l[a] ? i : a), ids[0]);
    expect(r.picks[0].id).toBe(argmax(keptIds));
    expect(r.picks[1].id).toBe(argmax([...l.keys()]));
    expect(Math.abs(r.picks[0].logprob - logSoftmax(Float32Array.from(keptIds, (i) => l[i]), keptIds.indexOf(r.picks[0].id)))).toBeLessThan(1e-4);
  });

  test("several rows in one dispatch, each with its own settings and draw, each fed to its own slot", async () => {
    const rand = mulberry32(23);
    const n = 3000;
    const rows = [randn(n, rand, 3), randn(n, rand, 3), randn(n, rand, 3)];
    const settings: RowSettings[] = [{ temperature: 0, topP: 1, u: 0.9 }, { temperature: 0.8, topP: 0.9, u: 0.3 }, { temperature: 1.2, topP: 1, u: 0.7, wantLogprob: false }];
    const together = await sampleRows(host, rows, settings);
    for (let r = 0; r < rows.length; r++) {
      const alone = await sample(host, rows[r], settings[r].temperature, settings[r].topP, settings[r].u, settings[r].wantLogprob ?? true);
      expect(together.picks[r]).toEqual({ id: alone.id, logprob: alone.logprob });
      expect(together.fed[r + 1]).toBe(alone.id);
    }
    expect(together.fed[0]).toBe(0xFFFFFFFF); // no row samples into slot 0
    expect(together.picks[2].logprob).toBe(0);
  });

  test("temperature + top-p follows the inverse CDF of the nucleus in id order", async () => {
    const rand = mulberry32(12);
    const n = 1000;
    const l = randn(n, rand, 3);
    const temperature = 0.7, topP = 0.8;
    // reference nucleus
    const mx = Math.max(...l);
    const e = Array.from(l, (v) => Math.exp((v - mx) / temperature));
    const total = e.reduce((a, b) => a + b, 0);
    const order = [...e.keys()].sort((a, b) => e[b] - e[a]);
    let acc = 0; const keep = new Set<number>();
    for (const i of order) { keep.add(i); acc += e[i]; if (acc >= topP * total) break; }
    const kept = [...keep].sort((a, b) => a - b);
    const mass = kept.reduce((a, i) => a + e[i], 0);
    for (const u of [0.01, 0.3, 0.55, 0.9, 0.999]) {
      let run_ = 0, want = kept[kept.length - 1];
      for (const i of kept) { run_ += e[i]; if (run_ > u * mass) { want = i; break; } }
      const r = await sample(host, l, temperature, topP, u);
      expect(keep.has(r.id)).toBe(true);
      expect(r.id).toBe(want);
      expect(Math.abs(r.logprob - logSoftmax(l, r.id))).toBeLessThan(1e-4);
      expect((await sample(host, l, temperature, topP, u, false)).id).toBe(want); // no exp-sum pass
    }
  });
});

describe("elementwise", () => {
  test("glu_mul (SiLU, and GELU through ggml's f16 table) and a scaled add over 1001 elements, two tokens", async () => {
    const rand = mulberry32(13);
    const n = 1001;
    // gates spread past +-10, where ggml's GELU switches to 0 and the identity
    const gu = randn(4 * n, rand).map((v, i) => (i % (2 * n) < n ? v * 4 : v));
    const h = storageBuffer(device, 8 * n);
    const silu = (g: number) => g / (1 + Math.exp(-g));
    // ggml_vec_geglu_f32 with GGML_GELU_FP16: the gate rounded to f16, looked up in the table
    const geluTable = (x: number) => (x <= -10 ? 0 : x >= 10 ? x : ggmlGeluTable()[floatToHalf(x)]);
    for (const [act, f] of [["silu", silu], ["gelu", geluTable]] as const) {
      const table = uploadF32(device, act === "gelu" ? ggmlGeluTable() : new Float32Array(4));
      run(host, host.get("glu_mul", { act }), [uploadF32(device, gu), h, paramsBuffer(device, GLU_MUL_PARAMS, { n, g_off: 0, u_off: n, stride: 2 * n }), table], [Math.ceil(n / 64), 2]);
      const want = Array.from({ length: 2 * n }, (_, j) => {
        const t = Math.floor(j / n), i = j % n;
        return f(gu[2 * n * t + i]) * gu[2 * n * t + n + i];
      });
      const got = await readF32(device, h, 2 * n);
      // GELU through the table is exact; the products with the up values round as the CPU's
      if (act === "gelu") expect(bitDiffs(got, Float32Array.from(want))).toEqual([]);
      else expectClose(got, want, 1e-5);
    }
    const x = randn(2 * n, rand), y = randn(2 * n, rand);
    const yb = uploadF32(device, y);
    run(host, host.get("add"), [uploadF32(device, x), yb, paramsBuffer(device, ADD_PARAMS, { n, scale: 0.25 })], [Math.ceil(n / 64), 2]);
    expectClose(await readF32(device, yb, 2 * n), Array.from(y, (v, i) => v + 0.25 * x[i]), 1e-6);
  });

  test("the GELU table: every half's entry is GELU's tanh form rounded to f16 (within one rounding step and float's cancellation)", () => {
    const t = ggmlGeluTable();
    let worst = 0;
    for (let h = 0; h < 65536; h++) {
      const x = halfToFloat(h);
      if (!Number.isFinite(x) || Math.abs(x) >= 10) continue;
      const exact = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * x * (1 + 0.044715 * x * x)));
      // one step of the f16 grid near the value (2^-24 at the bottom), plus what float arithmetic
      // loses in 1 + tanh(v) as tanh nears -1 (an ulp of 1, times x / 2)
      const step = Math.max(2 ** -24, 2 ** (Math.floor(Math.log2(Math.abs(exact) || 2 ** -24)) - 10));
      worst = Math.max(worst, Math.abs(t[h] - exact) / (step + 2 ** -24 * Math.abs(x)));
    }
    expect(worst).toBeLessThanOrEqual(1);
  });

  test("logit_cap: soft-capping and a plain scale of two rows", async () => {
    const rand = mulberry32(14);
    const n = 777;
    const logits = randn(2 * n, rand).map((v) => v * 40);
    for (const [pre, cap] of [[1 / 30, 30], [1 / 8, 0]]) {
      const b = uploadF32(device, logits);
      run(host, host.get("logit_cap"), [b, paramsBuffer(device, LOGIT_CAP_PARAMS, { n_vocab: n, pre, cap })], [Math.ceil(n / 256), 2]);
      const want = Array.from(logits, (v) => (cap ? cap * Math.tanh(v * Math.fround(pre)) : v * Math.fround(pre)));
      expectClose(await readF32(device, b, 2 * n), want, 1e-4);
    }
  });
});
