// The engine's in-process entry points: get a device, load a model onto it.

import type { ModelFile } from "./model/types.ts";
import { readHParams } from "./model/hparams.ts";
import { KernelHost, type StepShape } from "./gpu/kernels.ts";
import type { GpuFeatures } from "./gpu/device.ts";
import { ForwardPass } from "./forward.ts";
import { kvElementBytes } from "./kv-cache.ts";
import { ModelRunner } from "./runner.ts";
import { WeightUploader, destroyAll, type UploadProgress } from "./weights.ts";
import { cTrig } from "./libc-math.ts";
import type { LoadedModel } from "./types.ts";

export { acquireDevice, featuresOf, type GpuFeatures } from "./gpu/device.ts";
export { ModelRunner } from "./runner.ts";

/** Default context when the caller does not ask: the model's own, capped to keep the KV cache modest. */
export const DEFAULT_MAX_CONTEXT = 4096;

/** Defaults of the batching settings (LoadOptions; `serve` flags in src/config.ts). */
export const BATCH_DEFAULTS = {
  /** Sequences running at once (one sampled row each per step). */
  maxRunning: 32,
  /** Tokens in one step: every running sequence's decode token, then prompt chunks. */
  maxStepTokens: 128,
  /** Positions per KV page. */
  pageSize: 16,
  /** Bytes the KV pool may take when its size is not given (every layer's K and V). */
  kvBudgetBytes: 1024 * 1024 * 1024,
} as const;

export interface LoadOptions {
  maxContext?: number;
  /** Switch off device features to run the fallback kernels (tests). */
  features?: Partial<GpuFeatures>;
  /** Each dispatch in its own compute pass (see ForwardOptions). */
  passPerDispatch?: boolean;
  /** Q8_0-quantized activations with integer dots for Q8_0/Q4_0 weights (see ForwardOptions). */
  q8Activations?: boolean;
  /** The output head's products rounded exactly too (see ForwardOptions). */
  exactHead?: boolean;
  /** Sequences running at once (default BATCH_DEFAULTS.maxRunning). */
  maxRunning?: number;
  /** Tokens per step (default BATCH_DEFAULTS.maxStepTokens; at least maxRunning). */
  maxStepTokens?: number;
  /**
   * Positions the KV pool holds, over all sequences (rounded up to whole pages). Default: every
   * running sequence's full context, within BATCH_DEFAULTS.kvBudgetBytes and the device's buffer
   * limits, and never less than one full context.
   */
  kvCacheTokens?: number;
  /** Positions per KV page (a multiple of 8; default 16). */
  pageSize?: number;
  /** Reuse cached pages of earlier prompts (default true; off for benchmarks of prompt speed). */
  prefixCache?: boolean;
  /** Told as the weights go up to the device (file tensor bytes). */
  onUpload?: UploadProgress;
}

function positiveInt(name: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new RangeError(`${name} must be a positive integer, got ${v}`);
}

/** The step shape and the KV pool size (in pages) for a model on a device. */
export function batchGeometry(device: GPUDevice, hp: { nHeadKv: number; headDim: number; nLayer: number }, kvBytes: number, nCtx: number, opts: LoadOptions): { shape: StepShape; kvPages: number } {
  for (const k of ["maxRunning", "maxStepTokens", "kvCacheTokens", "pageSize"] as const) positiveInt(k, opts[k]);
  const pageSize = opts.pageSize ?? BATCH_DEFAULTS.pageSize;
  if (pageSize % 8 !== 0) throw new RangeError(`pageSize must be a multiple of 8, got ${pageSize}`);
  const maxRows = opts.maxRunning ?? BATCH_DEFAULTS.maxRunning;
  const maxTokens = Math.max(opts.maxStepTokens ?? BATCH_DEFAULTS.maxStepTokens, maxRows);
  const pagesPerSeq = Math.ceil(nCtx / pageSize);
  const tokenBytesPerLayer = kvBytes * hp.nHeadKv * hp.headDim;
  const byBinding = Math.floor(Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize) / (tokenBytesPerLayer * pageSize));
  const wanted = opts.kvCacheTokens !== undefined
    ? Math.ceil(opts.kvCacheTokens / pageSize)
    : Math.min(maxRows * pagesPerSeq, Math.floor(BATCH_DEFAULTS.kvBudgetBytes / (2 * hp.nLayer * tokenBytesPerLayer * pageSize)));
  const kvPages = Math.min(Math.max(wanted, pagesPerSeq), byBinding);
  if (kvPages < pagesPerSeq) throw new RangeError(`the device's buffer limit holds ${kvPages * pageSize} KV positions per layer, less than one context of ${nCtx}`);
  return { shape: { maxTokens, maxRows, pageSize, pagesPerSeq }, kvPages };
}

export async function loadModel(device: GPUDevice, file: ModelFile, opts: LoadOptions = {}): Promise<LoadedModel & ModelRunner> {
  const hp = readHParams(file);
  // attention.wgsl reads the KV cache four elements at a time (every published model's is)
  if (hp.headDim % 4 !== 0) throw new Error(`unsupported model: head dimension ${hp.headDim} is not a multiple of 4`);
  const kvBytes = kvElementBytes(new KernelHost(device, opts.features).features);
  const kvDim = hp.nHeadKv * hp.headDim;
  const maxByBinding = Math.floor(device.limits.maxStorageBufferBindingSize / (kvBytes * kvDim));
  if (opts.maxContext !== undefined && !(Number.isInteger(opts.maxContext) && opts.maxContext > 0)) {
    throw new RangeError(`maxContext must be a positive integer, got ${opts.maxContext}`);
  }
  const nCtx = Math.min(opts.maxContext ?? DEFAULT_MAX_CONTEXT, hp.nCtx, maxByBinding);
  const { shape, kvPages } = batchGeometry(device, hp, kvBytes, nCtx, opts);
  const stepHost = new KernelHost(device, opts.features, shape);
  const uploader = new WeightUploader(device, file, opts.onUpload);
  const trig = await cTrig();
  device.pushErrorScope("validation");
  let fwd: ForwardPass;
  try {
    fwd = new ForwardPass(device, stepHost, hp, uploader, { nCtx, shape, kvPages, passPerDispatch: opts.passPerDispatch, q8Activations: opts.q8Activations, exactHead: opts.exactHead, trig });
    // Record (not run) a decode step and a full step: a dispatch WebGPU rejects (a buffer bound
    // both read-only and writable, say) shows up here instead of as silent zeros at run time.
    const enc = device.createCommandEncoder();
    fwd.encode(enc, { tokens: 1, rows: 1, masked: true });
    fwd.encode(enc, { tokens: shape.maxTokens, rows: shape.maxRows, masked: true });
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
  uploader.finish();
  return new ModelRunner(device, hp, fwd, { nCtx, shape, kvPages, prefixCache: opts.prefixCache ?? true }, () => destroyAll(uploader.buffers), uploader.bytesUploaded);
}
