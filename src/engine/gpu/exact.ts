// Host side of shaders/exact.wgsl: the constants of its libc-compatible expf, and the probe that
// tells whether a device's fma() rounds once.

const f32 = Math.fround;
const wgslF32 = (x: number) => {
  const s = f32(x).toPrecision(9);
  return /[.e]/.test(s) ? s : `${s}.0`;
};
/** A double as an (hi, lo) pair of f32, written as WGSL. */
const pair = (d: number) => `${wgslF32(d)}, ${wgslF32(d - f32(d))}`;

/** glibc's expf data (EXP2F_TABLE_BITS = 5): 32/ln2 and the order-3 polynomial scaled by 1/32. */
const N = 32;
const INV_LN2 = 1.4426950408889634; // 0x1.71547652b82fep+0
const POLY = [0.05550361559341535, 0.2402284522445722, 0.6931471806916203]; // 0x1.c6af84b912394p-5, 0x1.ebfce50fac4f3p-3, 0x1.62e42ff0c52d6p-1

export const EXACT_CONSTANTS: Record<string, string> = {
  EXP2_TABLE: Array.from({ length: N }, (_, i) => `vec2<f32>(${pair(Math.pow(2, i / N))})`).join(", "),
  INV_LN2_32: pair(INV_LN2 * N),
  EXPF_C2: pair(POLY[2] / N),
  EXPF_C1: wgslF32(POLY[1] / N / N),
  EXPF_C0: wgslF32(POLY[0] / N / N / N),
};

const fusedFmaByDevice = new WeakMap<GPUDevice, boolean>();

/** Whether fma() on this device rounds once (false until probed). */
export function hasFusedFma(device: GPUDevice): boolean {
  return fusedFmaByDevice.get(device) ?? false;
}

/**
 * Runs fma(1 + 2^-12, 1 + 2^-12, -(1 + 2^-11)) on the device: 2^-24 when fused, 0 when the
 * compiler splits it into a multiply and an add (as lavapipe does).
 */
export async function probeFusedFma(device: GPUDevice): Promise<boolean> {
  const code = `
    @group(0) @binding(0) var<storage, read_write> o: array<f32>;
    @compute @workgroup_size(1) fn main() {
      let a = o[0];
      o[1] = fma(a, a, -o[2]);
    }`;
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module: device.createShaderModule({ code }), entryPoint: "main" } });
  const buf = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const read = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buf, 0, new Float32Array([1 + 2 ** -12, 0, 1 + 2 ** -11, 0]));
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] }));
  pass.dispatchWorkgroups(1);
  pass.end();
  enc.copyBufferToBuffer(buf, 0, read, 0, 16);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const fused = new Float32Array(read.getMappedRange().slice(0))[1] === 2 ** -24;
  read.unmap();
  buf.destroy();
  read.destroy();
  fusedFmaByDevice.set(device, fused);
  return fused;
}
