// Every kernel against a plain TypeScript reference on random data, for every weight format and
// for shapes that are not multiples of the workgroup sizes.
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";

setDefaultTimeout(60_000);
import { acquireDevice } from "../src/engine/gpu/device.ts";
import { KernelHost, Q8_BLOCK_WORDS, UNIFORM_X_BYTES, attentionKernel, normKernel, type Kernel } from "../src/engine/gpu/kernels.ts";
import { readF32, readBuffer, storageBuffer, storageUniformBuffer, uniformBuffer, uploadBytes, uploadF32, uploadU32, type Field } from "../src/engine/gpu/buffers.ts";
import { foldGroups } from "../src/engine/gpu/dispatch.ts";
import { GGMLType } from "../src/engine/model/types.ts";
import { MATVEC_TILING, ropeTable } from "../src/engine/forward.ts";
import { SAMPLE_PARTIALS_BYTES, sampleParamsFields, samplerDispatches } from "../src/engine/sampler.ts";
import { dequantizeRows, formatOf, gpuRowBytes, halfToFloat, floatToHalf, mulberry32, randomWeights, rowGroup, toGpuRows } from "../src/engine/quant.ts";
import { blockQuants, dotQ8Row, flashAttentionHead, quantizeRowQ8, roundF16, siluGgml } from "./support/cpu-arith.ts";

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

function state(pos: number, m: number): GPUBuffer {
  return uploadU32(device, new Uint32Array([pos, m, 0, 0]));
}

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
  [GGMLType.Q4_K, 19, 256], [GGMLType.Q4_K, 33, 512],
  [GGMLType.Q6_K, 19, 256], [GGMLType.Q6_K, 33, 512],
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
          const p = uniformBuffer(device, [k, n, rb, k, n, 0, gx, 0]);
          const outputs: Float32Array[] = [];
          // activations from storage, and (rows of a multiple of 4) from a uniform buffer: the same sums
          for (const name of k % 4 === 0 ? ["matvec", "matvec_uniform"] as const : ["matvec"] as const) {
            const yBuf = uploadF32(device, y0);
            const k_ = host.get(name, { format: type, consts: { TT: tt, MODE: mode, HAS_BIAS: mode === 0, TPR: tpr, RPW: rpw } });
            const xBuf = name === "matvec" ? uploadF32(device, x) : storageUniformBuffer(device, 2 * UNIFORM_X_BYTES);
            if (name === "matvec_uniform") device.queue.writeBuffer(xBuf, 0, new Float32Array(x));
            run(host, k_, [uploadBytes(device, gpuW), xBuf, yBuf, uploadF32(device, bias), state(0, m), p], [gx, gy, Math.ceil(m / tt)]);
            outputs.push(await readF32(device, yBuf, m * n));
          }
          // and without subgroups (every thread loads its own activations): the same sums
          {
            const yBuf = uploadF32(device, y0);
            const k_ = fallback.get("matvec", { format: type, consts: { TT: tt, MODE: mode, HAS_BIAS: mode === 0, TPR: tpr, RPW: rpw } });
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
    const kern = host.get("matvec", { format: GGMLType.Q8_0, consts: { TT: 8, MODE: 2, TPR: tpr, RPW: rpw } });
    const p = uniformBuffer(device, [k, n, gpuRowBytes(GGMLType.Q8_0, k), k, n, 0, Math.ceil(n / rpw), 0]);
    run(host, kern, [uploadBytes(device, toGpuRows(GGMLType.Q8_0, wBytes, 2 * n, k)), uploadF32(device, x), yBuf, uploadF32(device, new Float32Array(1)), state(0, m), p], [Math.ceil(n / rpw), 1, 1]);
    const ref = refMatvec(w, x, 2 * n, k, m);
    const want: number[] = [];
    for (let t = 0; t < m; t++) for (let r = 0; r < n; r++) {
      const g = ref[t * 2 * n + r], u = ref[t * 2 * n + n + r];
      want.push((g / (1 + Math.exp(-g))) * u);
    }
    expectClose(await readF32(device, yBuf, m * n), want, 2e-4);
  });

  test("last_only computes just the batch's last token", async () => {
    const rand = mulberry32(8);
    const n = 21, k = 64, m = 4;
    const wBytes = randomWeights(GGMLType.F32, n, k, rand);
    const x = randn(m * k, rand);
    const yBuf = storageBuffer(device, 4 * n);
    const kern = host.get("matvec", { format: GGMLType.F32 });
    const p = uniformBuffer(device, [k, n, 4 * k, k, n, 0, 3, 1]);
    run(host, kern, [uploadBytes(device, toGpuRows(GGMLType.F32, wBytes, n, k)), uploadF32(device, x), yBuf, uploadF32(device, new Float32Array(1)), state(0, m), p], [3, 1, 1]);
    const w = dequantizeRows(GGMLType.F32, wBytes, n, k);
    const ref = refMatvec(w, x.subarray((m - 1) * k), n, k, 1);
    expectClose(await readF32(device, yBuf, n), ref, 1e-5);
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
        const wq = blockQuants(type === GGMLType.Q4_0, wBytes, n, k);
        const x = randn(m * k, rand);
        // larger than a uniform binding (as a big model's is): the uniform kernel binds its first 64 KB
        const xq = storageUniformBuffer(device, Math.max(2 * UNIFORM_X_BYTES, 4 * Q8_BLOCK_WORDS * m * k / 32));
        run(kh, kh.get("quantize_q8"), [uploadF32(device, x), xq, uniformBuffer(device, [k, k])], [1, m]);
        const yBuf = storageBuffer(device, 4 * m * n);
        const rpw = 64;
        const kern = kh.get(name, { format: type, consts: { TT: tt, RPT: rpt, RPW: rpw, ORDER: order } });
        const [gx, gy] = foldGroups(Math.ceil(n / (rpw * rpt)));
        run(kh, kern, [uploadBytes(device, toGpuRows(type, wBytes, n, k)), xq, yBuf, uploadF32(device, new Float32Array(1)), state(0, m), uniformBuffer(device, [k, n, gpuRowBytes(type, k), k, n, 0, gx, 0])], [gx, gy, Math.ceil(m / tt)]);
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
    const wq = blockQuants(false, wBytes, 2 * n, k);
    const x = randn(m * k, rand, 3);
    const xq = storageUniformBuffer(device, UNIFORM_X_BYTES);
    run(host, host.get("quantize_q8"), [uploadF32(device, x), xq, uniformBuffer(device, [k, k])], [1, m]);
    const y0 = randn(m * n, rand);
    const cases = [[1, 8, 1, "matvec_q8"], [2, 8, 1, "matvec_q8"], [1, 1, 2, "matvec_q8"], [2, 1, 2, "matvec_q8"], [1, 1, 2, "matvec_q8_uniform"], [2, 1, 2, "matvec_q8_uniform"]] as const;
    for (const [mode, tt, rpt, name] of cases) {
      const yBuf = uploadF32(device, y0);
      const kern = host.get(name, { format: GGMLType.Q8_0, consts: { TT: tt, RPT: rpt, RPW: 64, MODE: mode } });
      run(host, kern, [uploadBytes(device, toGpuRows(GGMLType.Q8_0, wBytes, 2 * n, k)), xq, yBuf, uploadF32(device, new Float32Array(1)), state(0, m), uniformBuffer(device, [k, n, gpuRowBytes(GGMLType.Q8_0, k), k, n, 0, 1, 0])], [1, 1, Math.ceil(m / tt)]);
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

describe("embedding lookup", () => {
  for (const [type, k] of [[GGMLType.F32, 50], [GGMLType.F16, 51], [GGMLType.BF16, 40], [GGMLType.Q8_0, 96], [GGMLType.Q4_0, 64], [GGMLType.Q4_K, 256], [GGMLType.Q6_K, 256]] as [GGMLType, number][]) {
    test(`${formatOf(type).name} k=${k}, table split in two parts`, async () => {
      const rand = mulberry32(k);
      const rows = 23;
      const wBytes = randomWeights(type, rows, k, rand);
      const w = dequantizeRows(type, wBytes, rows, k);
      const rb = gpuRowBytes(type, k);
      const gpuW = toGpuRows(type, wBytes, rows, k);
      const ids = [0, 22, 5, 11, 12];
      const xBuf = storageBuffer(device, 4 * ids.length * k);
      const kern = host.get("embed", { format: type });
      const idBuf = uploadU32(device, new Uint32Array(ids));
      // split where the uploader would: on a whole group of interleaved rows (Q8_0 / Q4_0: 8)
      const g = rowGroup(type), split = Math.ceil(12 / g) * g;
      for (const [r0, nr] of [[0, split], [split, rows - split]]) {
        const p = uniformBuffer(device, [k, rb, r0, nr, k]);
        run(host, kern, [uploadBytes(device, gpuW.subarray(r0 * rb, (r0 + Math.ceil(nr / g) * g) * rb)), idBuf, xBuf, p], [Math.ceil(Math.ceil(k / 32) / 64), ids.length]);
      }
      const want = ids.flatMap((id) => [...w.subarray(id * k, (id + 1) * k)]);
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
  const normOf = (h: KernelHost, consts: Record<string, string | boolean> = {}) => h.get(normKernel(h.features), { consts });

  test("rows of 289, 3 tokens: within 1e-5 of the reference, and the same floats in every form", async () => {
    const rand = mulberry32(3);
    const n = 289, m = 3;
    const x = randn(n * m, rand), w = randn(n, rand);
    const outputs: Float32Array[] = [];
    for (const [, h] of FORMS) {
      const y = storageBuffer(device, 4 * n * m);
      run(h(), normOf(h()), [uploadF32(device, x), y, uploadF32(device, w), state(0, m), uniformBuffer(device, [n, 0, n, n, { f: 1e-5 }, 0]), storageBuffer(device, 16)], [1, m]);
      outputs.push(await readF32(device, y, n * m));
    }
    expectClose(outputs[0], refRmsnorm(x, w, n, 1e-5), 1e-5);
    for (const other of outputs.slice(1)) expect(bitDiffs(other, outputs[0])).toEqual([]);
  });

  for (const [label, h] of FORMS.slice(0, 2)) {
    test(`with Q8_OUT, the normalized rows also as Q8_0 blocks, the same as quantize_q8 writes (${label})`, async () => {
      const rand = mulberry32(31);
      const n = 288, m = 3;
      const x = randn(n * m, rand), w = randn(n, rand);
      const y = storageBuffer(device, 4 * n * m);
      const xqNorm = storageBuffer(device, 4 * Q8_BLOCK_WORDS * m * n / 32), xqSep = storageBuffer(device, 4 * Q8_BLOCK_WORDS * m * n / 32);
      run(h(), normOf(h(), { Q8_OUT: true }), [uploadF32(device, x), y, uploadF32(device, w), state(0, m), uniformBuffer(device, [n, 0, n, n, { f: 1e-5 }, 0]), xqNorm], [1, m]);
      run(host, host.get("quantize_q8"), [y, xqSep, uniformBuffer(device, [n, n])], [1, m]);
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
      run(h(), normOf(h(), { SRC: "Y" }), [storageBuffer(device, 16), y, uploadF32(device, w), state(0, m), uniformBuffer(device, [hd, hd, stride, stride, { f: 1e-6 }, 0]), storageBuffer(device, 16)], [heads, m]);
      const got = await readF32(device, y, stride * m);
      const want = Float32Array.from(x);
      for (let t = 0; t < m; t++) want.set(refRmsnorm(x.subarray(t * stride, t * stride + hd * heads), w, hd, 1e-6), t * stride);
      expectClose(got, want, 1e-5);
    });
  }
});

function refRope(v: Float32Array, hd: number, pos: number, freq: Float32Array, neox: boolean): Float32Array {
  const out = Float32Array.from(v);
  for (let h = 0; h < v.length / hd; h++) for (let j = 0; j < hd / 2; j++) {
    const [a, b] = neox ? [j, j + hd / 2] : [2 * j, 2 * j + 1];
    const th = Math.fround(pos * freq[j]);
    const x0 = v[h * hd + a], x1 = v[h * hd + b];
    out[h * hd + a] = x0 * Math.cos(th) - x1 * Math.sin(th);
    out[h * hd + b] = x0 * Math.sin(th) + x1 * Math.cos(th);
  }
  return out;
}

describe("rope + kv write, attention", () => {
  for (const neox of [false, true]) {
    for (const [label, h] of [["f16 cache", () => host], ["f32 cache fallback", () => fallback]] as const) {
      test(`rope ${neox ? "neox" : "norm"} with GQA heads (${label})`, async () => {
        const rand = mulberry32(neox ? 5 : 6);
        const nh = 6, nkv = 2, hd = 18, m = 3, pos0 = 7, nctx = 16;
        const qd = nh * hd, kvd = nkv * hd, stride = qd + 2 * kvd;
        const qkv = randn(stride * m, rand);
        const freq = new Float32Array(hd / 2);
        for (let j = 0, f = 1; j < hd / 2; j++, f = Math.fround(f * Math.fround(10000 ** (-2 / hd)))) freq[j] = f;
        const qkvBuf = uploadF32(device, qkv);
        const kc = storageBuffer(device, 4 * nctx * kvd), vc = storageBuffer(device, 4 * nctx * kvd);
        const k = h().get("rope");
        const total = (nh + nkv) * hd / 2 + kvd;
        run(h(), k, [qkvBuf, kc, vc, uploadF32(device, ropeTable(10000 ** (-2 / hd), new Float32Array(hd / 2).fill(1), nctx)), state(pos0, m), uniformBuffer(device, [nh, nkv, hd, stride, kvd, neox ? 1 : 0])], [Math.ceil(total / 64), m]);
        const got = await readF32(device, qkvBuf, stride * m);
        const f16 = h().features.shaderF16;
        const kvRead = async (b: GPUBuffer) => {
          const raw = await readBuffer(device, b, (f16 ? 2 : 4) * nctx * kvd);
          const u = f16 ? new Uint16Array(raw) : null;
          return f16 ? Float32Array.from(u!, halfToFloat) : new Float32Array(raw);
        };
        const kGot = await kvRead(kc), vGot = await kvRead(vc);
        for (let t = 0; t < m; t++) {
          const row = qkv.subarray(t * stride, (t + 1) * stride);
          expectClose(got.subarray(t * stride, t * stride + qd), refRope(row.subarray(0, qd), hd, pos0 + t, freq, neox), 1e-5);
          const p = pos0 + t;
          expectClose(kGot.subarray(p * kvd, (p + 1) * kvd), refRope(row.subarray(qd, qd + kvd), hd, p, freq, neox).map(roundF16), 1e-3);
          expectClose(vGot.subarray(p * kvd, (p + 1) * kvd), row.subarray(qd + kvd).map(roundF16), 1e-3);
        }
      });
    }
  }

  for (const [label, h] of [["f16 cache, one SIMD group", () => host], ["f32 cache, one SIMD group", () => lanesF32], ["f16 cache, workgroup of 64", () => gpuStyle], ["f32 cache, shared-memory fallback", () => fallback]] as const) {
    for (const [ctx0, m, hd] of [[0, 1, 20], [300, 3, 20], [40, 5, 20], [200, 1, 48], [70, 2, 80], [290, 2, 48]]) {
      test(`attention GQA 8 heads / 2 kv heads, head dim ${hd}, ${ctx0} cached + ${m} new (${label})`, async () => {
        const rand = mulberry32(ctx0 + m);
        const nh = 8, nkv = 2, nctx = 512;
        const qd = nh * hd, kvd = nkv * hd, stride = qd + 2 * kvd;
        const f16 = h().features.shaderF16;
        const kv = (n: number) => randn(n, rand).map(roundF16);
        const kAll = kv(nctx * kvd), vAll = kv(nctx * kvd);
        const enc = (a: Float32Array) => f16 ? uploadBytes(device, new Uint8Array(Uint16Array.from(a, floatToHalf).buffer)) : uploadF32(device, a);
        const qkv = randn(stride * m, rand);
        const out = storageBuffer(device, 4 * qd * m);
        const k = h().get(...attentionKernel(h().features, hd));
        const scale = 1 / Math.sqrt(hd);
        run(h(), k, [uploadF32(device, qkv), enc(kAll), enc(vAll), out, state(ctx0, m), uniformBuffer(device, [nh, nkv, hd, stride, kvd, qd, { f: scale }])], [nh, m]);
        const want = new Float32Array(qd * m);
        for (let t = 0; t < m; t++) for (let hh = 0; hh < nh; hh++) {
          const kvh = Math.floor(hh / (nh / nkv));
          const n = ctx0 + t + 1;
          const rows = (all: Float32Array) => Array.from({ length: n }, (_, p) => all.subarray(p * kvd + kvh * hd, p * kvd + (kvh + 1) * hd));
          want.set(flashAttentionHead(qkv.subarray(t * stride + hh * hd, t * stride + (hh + 1) * hd), rows(kAll), rows(vAll), Math.fround(scale)), t * qd + hh * hd);
        }
        expect(bitDiffs(await readF32(device, out, qd * m), want)).toEqual([]);
      });
    }
  }
});

describe("sampling", () => {
  /** Both sampler passes (per-chunk partials, then the pick) as the engine records them. */
  async function sample(h: KernelHost, logits: Float32Array, temperature: number, topP: number, u: number, wantLogprob = true) {
    const n = logits.length;
    const b = {
      logits: uploadF32(device, logits), out: storageBuffer(device, 8), ids: storageBuffer(device, 4), state: state(5, 3),
      rng: uploadF32(device, new Float32Array([u])),
      sampleParams: uniformBuffer(device, sampleParamsFields(n, temperature, topP, 1, wantLogprob)),
      samplePartials: storageBuffer(device, SAMPLE_PARTIALS_BYTES),
    };
    const enc = device.createCommandEncoder();
    for (const d of samplerDispatches(h, b)) {
      const pass = enc.beginComputePass();
      pass.setPipeline(d.kernel.pipeline);
      pass.setBindGroup(0, d.bind);
      pass.dispatchWorkgroups(...d.grid);
      pass.end();
    }
    device.queue.submit([enc.finish()]);
    const o = new Uint32Array(await readBuffer(device, b.out, 8));
    const s = new Uint32Array(await readBuffer(device, b.state, 12));
    return { id: o[0], logprob: new Float32Array(o.buffer)[1], next: new Uint32Array(await readBuffer(device, b.ids, 4))[0], state: [...s] };
  }
  function logSoftmax(l: Float32Array, i: number) {
    const mx = l.reduce((a, b) => Math.max(a, b), -Infinity);
    let z = 0;
    for (const v of l) z += Math.exp(v - mx);
    return l[i] - mx - Math.log(z);
  }

  for (const [label, h] of [["subgroups", () => host], ["fallback", () => fallback]] as const) {
    test(`greedy argmax over 32003 logits, lowest id on ties, logprob (${label})`, async () => {
      const rand = mulberry32(11);
      const l = randn(32003, rand, 5);
      l[31000] = 9; l[777] = 9;
      const r = await sample(h(), l, 0, 1, 0.5);
      expect(r.id).toBe(777);
      expect(r.next).toBe(777);
      expect(r.state).toEqual([8, 1, 1]);
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
  test("silu_mul and add over 1001 elements", async () => {
    const rand = mulberry32(13);
    const n = 1001;
    const gu = randn(2 * n, rand);
    const h = storageBuffer(device, 4 * n);
    run(host, host.get("silu_mul"), [uploadF32(device, gu), h, uniformBuffer(device, [n, 0, n, 2 * n])], [Math.ceil(n / 64), 1]);
    const want = Array.from({ length: n }, (_, i) => (gu[i] / (1 + Math.exp(-gu[i]))) * gu[n + i]);
    expectClose(await readF32(device, h, n), want, 1e-5);
    const x = randn(n, rand), y = randn(n, rand);
    const yb = uploadF32(device, y);
    run(host, host.get("add"), [uploadF32(device, x), yb, uniformBuffer(device, [n])], [Math.ceil(n / 64), 1]);
    expectClose(await readF32(device, yb, n), Array.from(y, (v, i) => v + x[i]), 1e-6);
  });
});
