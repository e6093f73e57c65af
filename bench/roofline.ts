// The bandwidth roofline of batched decode: what a step must read (every weight matrix once,
// shared by the step's sequences, plus each sequence's own KV positions) and the device's
// memory bandwidth, measured by timed buffer copies. A step of N sequences at mean context c
// can at best produce N * bandwidth / (weights + N * c * kvPerPosition) tokens per second.

import type { ModelFile } from "../src/engine/model/types.ts";
import { readHParams } from "../src/engine/model/hparams.ts";
import { kvElementBytes } from "../src/engine/kv-cache.ts";

/** Bytes of weights read by one decode step: every matrix once, the output head included. */
export function weightBytesPerStep(file: ModelFile): number {
  const embd = file.tensors.find((t) => t.name === "token_embd.weight");
  const hasOutput = file.tensors.some((t) => t.name === "output.weight");
  let total = 0;
  for (const t of file.tensors) if (t !== embd) total += t.nbytes;
  if (embd) total += hasOutput ? embd.nbytes / embd.dims[1] : embd.nbytes; // one row looked up, or the tied head
  return total;
}

/** Bytes of K and V one position holds over all layers, in the engine's element type on this device. */
export function kvBytesPerPosition(file: ModelFile, features: { shaderF16: boolean }): number {
  const hp = readHParams(file);
  return hp.nLayer * 2 * hp.nHeadKv * hp.headDim * kvElementBytes(features);
}

export interface Roofline {
  /** Weight bytes read once per step. */
  weightBytes: number;
  kvBytesPerPosition: number;
  /** Device memory bandwidth, bytes per second. */
  bandwidth: number;
}

/** Bytes one decode step of `n` sequences at mean context `meanContext` reads. */
export const stepBytes = (r: Roofline, n: number, meanContext: number) => r.weightBytes + n * meanContext * r.kvBytesPerPosition;

/** The most output tokens per second `n` sequences can get if reading memory were the only cost. */
export const rooflineTokensPerSecond = (r: Roofline, n: number, meanContext: number) => (n * r.bandwidth) / stepBytes(r, n, meanContext);

/**
 * Copy bandwidth of the device: bytes read plus bytes written per second by copyBufferToBuffer
 * over `bytes`-sized buffers (one warm-up, then the best of `runs` batches of 8 copies).
 */
export async function measureBandwidth(device: GPUDevice, bytes = 256 * 2 ** 20, runs = 3): Promise<number> {
  const size = Math.min(bytes, device.limits.maxBufferSize) & ~255;
  const usage = GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const a = device.createBuffer({ size, usage }), b = device.createBuffer({ size, usage });
  const copies = async (n: number) => {
    const enc = device.createCommandEncoder();
    for (let i = 0; i < n; i++) i % 2 ? enc.copyBufferToBuffer(b, 0, a, 0, size) : enc.copyBufferToBuffer(a, 0, b, 0, size);
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / 1000;
  };
  try {
    await copies(2);
    let best = Infinity;
    for (let r = 0; r < runs; r++) best = Math.min(best, await copies(8));
    return (8 * 2 * size) / best;
  } finally {
    a.destroy();
    b.destroy();
  }
}
