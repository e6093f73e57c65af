// shaders/exact.wgsl on this device against bit-exact references: the fused multiply-add it
// rebuilds (or takes from the hardware), binary16 rounding, and expf as the C library computes it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { acquireDevice } from "../src/engine/gpu/device.ts";
import { exactSource } from "../src/engine/gpu/kernels.ts";
import { hasFusedFma } from "../src/engine/gpu/exact.ts";
import { mulberry32 } from "../src/engine/quant.ts";
import { expfGlibc, fmaF32, roundF16 } from "./support/cpu-arith.ts";

let device: GPUDevice;
beforeAll(async () => { device = await acquireDevice(); });
// (a device left alive keeps its compiled pipelines mapped: the whole suite is one process)
afterAll(() => device?.destroy());

/** Runs `expr` (WGSL over a, b, c) per element for each arithmetic mode the device can run. */
async function evaluate(expr: string, a: Float32Array<ArrayBuffer>, b: Float32Array<ArrayBuffer>, c: Float32Array<ArrayBuffer>, fusedFma: boolean): Promise<Float32Array> {
  const n = a.length;
  const code = `${exactSource(fusedFma)}
    @group(0) @binding(0) var<storage, read> A: array<f32>;
    @group(0) @binding(1) var<storage, read> B: array<f32>;
    @group(0) @binding(2) var<storage, read> C: array<f32>;
    @group(0) @binding(3) var<storage, read_write> O: array<f32>;
    @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
      exact_init();
      let i = g.x;
      if (i >= ${n}u) { return; }
      let a = A[i]; let b = B[i]; let c = C[i];
      O[i] = ${expr};
    }`;
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module: device.createShaderModule({ code }), entryPoint: "main" } });
  const upload = (d: Float32Array<ArrayBuffer>) => {
    const buf = device.createBuffer({ size: d.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(buf, 0, d);
    return buf;
  };
  const out = device.createBuffer({ size: 4 * n, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ size: 4 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [upload(a), upload(b), upload(c), out].map((buffer, binding) => ({ binding, resource: { buffer } })) }));
  pass.dispatchWorkgroups(Math.ceil(n / 64));
  pass.end();
  enc.copyBufferToBuffer(out, 0, read, 0, 4 * n);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const res = new Float32Array(read.getMappedRange().slice(0));
  read.unmap();
  return res;
}

function mismatches(got: Float32Array, want: (i: number) => number): { count: number; first?: string } {
  let count = 0, first: string | undefined;
  for (let i = 0; i < got.length; i++) {
    const w = want(i);
    if (!Object.is(got[i], w) && !(Number.isNaN(got[i]) && Number.isNaN(w))) {
      count++;
      first ??= `#${i}: got ${got[i]}, want ${w}`;
    }
  }
  return { count, first };
}

const N = 1 << 15;
function random(seed: number, scale: number, n = N): Float32Array<ArrayBuffer> {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale * 2 ** Math.floor(r() * 8 - 4));
}

// Emulated (every device) and, where the device has one, the hardware's fused multiply-add.
const MODES = () => [false, ...(hasFusedFma(device) ? [true] : [])];

describe("exact f32 helpers", () => {
  test("fma_exact rounds once, like a fused multiply-add", async () => {
    const [a, b, c] = [random(1, 4), random(2, 4), random(3, 4)];
    for (const fused of MODES()) {
      const got = await evaluate("fma_exact(a, b, c)", a, b, c, fused);
      expect(mismatches(got, (i) => fmaF32(a[i], b[i], c[i]))).toEqual({ count: 0, first: undefined });
    }
  });

  test("fma_int on integer multiplicands up to 2^16 rounds once", async () => {
    // d as the matrix products make it (an f16 weight scale times an f16 activation scale, 22
    // bits) and as any f32; i over its whole range, the ends included
    const r = mulberry32(5);
    const a = Float32Array.from({ length: N }, (_, k) => (k % 2 ? roundF16(r() * 0.02) * roundF16(r() * 0.05) : (r() * 2 - 1) * 2 ** (r() * 10 - 5)));
    const b = Float32Array.from({ length: N }, (_, k) => (k < 4 ? [65536, -65536, 65535, -64516][k] : Math.round((r() * 2 - 1) * 65536)));
    const c = Float32Array.from({ length: N }, (_, k) => (r() * 2 - 1) * Math.abs(a[k] * b[k]) * 2 ** (r() * 8 - 4));
    for (const fused of MODES()) {
      const got = await evaluate("fma_int(a, split8x3(a), i32(b), c)", a, b, c, fused);
      expect(mismatches(got, (i) => fmaF32(a[i], b[i], c[i]))).toEqual({ count: 0, first: undefined });
    }
    // and these cases tell one rounding from two
    const twice = await evaluate("opaque(a * b) + c", a, b, c, false);
    expect(mismatches(twice, (i) => fmaF32(a[i], b[i], c[i])).count).toBeGreaterThan(N / 10);
  });

  test("the unfused path actually differs from a multiply then an add", () => {
    // guards the test above: with these inputs one rounding and two roundings disagree
    const a = 1 + 2 ** -12;
    expect(fmaF32(a, a, -(1 + 2 ** -11))).toBe(2 ** -24);
    expect(Math.fround(Math.fround(a * a) - (1 + 2 ** -11))).toBe(0);
  });

  test("round_f16 is binary16 round-to-nearest-even, subnormals included", async () => {
    const a = new Float32Array([...random(7, 1), 0.5 + 2 ** -12, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 3e-6, -7.5e-8, 65519, 65520, 1e-9]);
    const got = await evaluate("round_f16(a)", a, a, a, false);
    expect(mismatches(got, (i) => roundF16(a[i]))).toEqual({ count: 0, first: undefined });
  });

  test("expf_libc equals glibc's expf", async () => {
    const r = mulberry32(8);
    const a = Float32Array.from({ length: N }, () => -r() * 30);
    a.set([0, -0, -1e-8, -87.3, -103.9, -104, 1.5, 88.7], 0);
    for (const fused of MODES()) {
      const got = await evaluate("expf_libc(a)", a, a, a, fused);
      // glibc rounds a double once; carried in f32 pairs the value is good to ~2^-42, so a result
      // within that of a rounding midpoint (about 1 in 30000) may round the other way, by one ulp
      const m = mismatches(got, (i) => expfGlibc(a[i]));
      expect(m.count).toBeLessThanOrEqual(3);
      for (let i = 0; i < N; i++) expect(Math.abs(got[i] - expfGlibc(a[i]))).toBeLessThanOrEqual(Math.abs(expfGlibc(a[i])) * 2 ** -23);
    }
  });

  test("the expf port is glibc's where the C library can be loaded", async () => {
    let expf: (x: number) => number;
    try {
      const { dlopen, FFIType } = await import("bun:ffi");
      const lib = dlopen("libm.so.6", { expf: { args: [FFIType.f32], returns: FFIType.f32 } });
      expf = (x) => lib.symbols.expf(x) as number;
    } catch {
      return; // not glibc: nothing to compare with
    }
    const r = mulberry32(9);
    let differ = 0, fromCorrectRounding = 0;
    for (let i = 0; i < 200000; i++) {
      const x = Math.fround(-r() * 40);
      const want = expf(x);
      if (expfGlibc(x) !== want) differ++;
      if (Math.fround(Math.exp(x)) !== want) fromCorrectRounding++;
    }
    expect(differ).toBe(0);
    // and it is not simply the correctly rounded exp (which the port would then not need to be)
    expect(fromCorrectRounding).toBeGreaterThan(0);
  });
});

describe("fma_half", () => {
  test("h * b + c rounds once for an f16-valued h", async () => {
    const a = random(13, 4).map(roundF16);
    const [b, c] = [random(14, 1), random(15, 2)];
    for (const fused of MODES()) {
      const got = await evaluate("fma_half(a, b, split12(b), c)", a, b, c, fused);
      expect(mismatches(got, (i) => fmaF32(a[i], b[i], c[i]))).toEqual({ count: 0, first: undefined });
    }
  });
});
