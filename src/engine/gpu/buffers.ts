// Small helpers over GPU buffers: storage buffers padded to whole words, uniform parameter
// blocks from typed field lists, and readback.

export const STORAGE = 0x80 | 0x8 | 0x4; // STORAGE | COPY_DST | COPY_SRC
const UNIFORM = 0x40 | 0x8; // UNIFORM | COPY_DST
const MAP_READ = 0x1;
const COPY_DST = 0x8;

/** A storage buffer of at least `bytes` (rounded up to 16, plus a spare word for unaligned reads). */
export function storageBuffer(device: GPUDevice, bytes: number, label?: string): GPUBuffer {
  return device.createBuffer({ size: Math.max(16, Math.ceil((bytes + 4) / 16) * 16), usage: STORAGE, label });
}

/** A storage buffer that kernels may also bind as a uniform buffer (of at most `bytes`). */
export function storageUniformBuffer(device: GPUDevice, bytes: number, label?: string): GPUBuffer {
  return device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage: STORAGE | UNIFORM, label });
}

/** Uploads bytes (any length) into a fresh storage buffer. */
export function uploadBytes(device: GPUDevice, data: Uint8Array, label?: string): GPUBuffer {
  const buf = storageBuffer(device, data.byteLength, label);
  const whole = data.byteLength & ~3;
  if (whole) device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, whole);
  if (whole !== data.byteLength) {
    const tail = new Uint8Array(4);
    tail.set(data.subarray(whole));
    device.queue.writeBuffer(buf, whole, tail);
  }
  return buf;
}

export function uploadF32(device: GPUDevice, data: Float32Array, label?: string): GPUBuffer {
  return uploadBytes(device, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), label);
}

export function uploadU32(device: GPUDevice, data: Uint32Array, label?: string): GPUBuffer {
  return uploadBytes(device, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), label);
}

/** A field of a uniform block: a u32, or an f32 written as { f: value }. */
export type Field = number | { f: number };

export function encodeFields(fields: Field[]): Uint8Array<ArrayBuffer> {
  const n = Math.max(4, Math.ceil(fields.length / 4) * 4);
  const buf = new ArrayBuffer(n * 4);
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  fields.forEach((v, i) => {
    if (typeof v === "number") u[i] = v >>> 0;
    else f[i] = v.f;
  });
  return new Uint8Array(buf);
}

export function uniformBuffer(device: GPUDevice, fields: Field[], label?: string): GPUBuffer {
  const data = encodeFields(fields);
  const buf = device.createBuffer({ size: data.byteLength, usage: UNIFORM, label });
  device.queue.writeBuffer(buf, 0, data);
  return buf;
}

/** Copies `bytes` from a buffer and maps them back (a test and logits path, not the token path). */
export async function readBuffer(device: GPUDevice, src: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
  const size = Math.ceil(bytes / 4) * 4;
  const staging = device.createBuffer({ size, usage: MAP_READ | COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(src, offset, staging, 0, size);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(MAP_READ);
  const out = staging.getMappedRange().slice(0, bytes);
  staging.unmap();
  staging.destroy();
  return out;
}

export async function readF32(device: GPUDevice, src: GPUBuffer, n: number, offset = 0): Promise<Float32Array> {
  return new Float32Array(await readBuffer(device, src, 4 * n, offset));
}
