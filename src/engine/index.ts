// The engine's in-process entry points: get a device, load a model onto it.

import type { ModelFile } from "./model/types.ts";
import { readHParams } from "./model/hparams.ts";
import { KernelHost } from "./gpu/kernels.ts";
import type { GpuFeatures } from "./gpu/device.ts";
import { ForwardPass, MAX_BATCH } from "./forward.ts";
import { ModelRunner } from "./runner.ts";
import { WeightUploader, destroyAll } from "./weights.ts";
import { cTrig } from "./libc-math.ts";
import type { LoadedModel } from "./types.ts";

export { acquireDevice, featuresOf, type GpuFeatures } from "./gpu/device.ts";
export { ModelRunner } from "./runner.ts";

/** Default context when the caller does not ask: the model's own, capped to keep the KV cache modest. */
export const DEFAULT_MAX_CONTEXT = 4096;

export interface LoadOptions {
  maxContext?: number;
  /** Switch off device features to run the fallback kernels (tests). */
  features?: Partial<GpuFeatures>;
  passPerDispatch?: boolean;
  /** Q8_0-quantized activations with integer dots for Q8_0/Q4_0 weights (see ForwardOptions). */
  q8Activations?: boolean;
  /** The output head's products rounded exactly too (see ForwardOptions). */
  exactHead?: boolean;
}

export async function loadModel(device: GPUDevice, file: ModelFile, opts: LoadOptions = {}): Promise<LoadedModel & ModelRunner> {
  const hp = readHParams(file);
  // attention.wgsl reads the KV cache four elements at a time (every published model's is)
  if (hp.headDim % 4 !== 0) throw new Error(`unsupported model: head dimension ${hp.headDim} is not a multiple of 4`);
  const host = new KernelHost(device, opts.features);
  const kvBytes = host.features.shaderF16 ? 2 : 4;
  const kvDim = hp.nHeadKv * hp.headDim;
  const maxByBinding = Math.floor(device.limits.maxStorageBufferBindingSize / (kvBytes * kvDim));
  if (opts.maxContext !== undefined && !(Number.isInteger(opts.maxContext) && opts.maxContext > 0)) {
    throw new RangeError(`maxContext must be a positive integer, got ${opts.maxContext}`);
  }
  const nCtx = Math.min(opts.maxContext ?? DEFAULT_MAX_CONTEXT, hp.nCtx, maxByBinding);
  const uploader = new WeightUploader(device, file);
  const trig = await cTrig();
  device.pushErrorScope("validation");
  let fwd: ForwardPass;
  try {
    fwd = new ForwardPass(device, host, hp, uploader, { nCtx, passPerDispatch: opts.passPerDispatch, q8Activations: opts.q8Activations, exactHead: opts.exactHead, trig });
    // Record (not run) a decode and a prefill step: a dispatch WebGPU rejects (a buffer bound
    // both read-only and writable, say) shows up here instead of as silent zeros at run time.
    const enc = device.createCommandEncoder();
    for (const m of [1, MAX_BATCH]) fwd.encode(enc, m, { logits: true, sample: true });
    enc.finish();
  } catch (e) {
    await device.popErrorScope();
    destroyAll(uploader.buffers);
    throw e;
  }
  const err = await device.popErrorScope();
  if (err) {
    fwd.dispose();
    destroyAll(uploader.buffers);
    throw new Error(`loading ${file.path} failed on the GPU: ${err.message}`);
  }
  return new ModelRunner(device, hp, fwd, nCtx, () => destroyAll(uploader.buffers), uploader.bytesUploaded);
}
