// Every message between the engine worker and its host, in one place. Messages are small:
// token ids in, token ids (and logprobs) out, status and errors.

import type { FinishReason, GeneratedToken, GenerateOptions, GenerationTimings } from "./types.ts";
import type { Priority } from "./sequence.ts";
import type { BatcherStats } from "./batcher.ts";

export interface ModelSummary {
  id: string;
  arch: string;
  nVocab: number;
  nCtx: number;
  /** Sequences it runs at once (more wait in the engine). */
  maxRunning: number;
  /** Tokens per step. */
  maxStepTokens: number;
  /** KV pool: pages of pageSize positions. */
  kvPages: number;
  pageSize: number;
}

/** How a model is loaded: its context and its batching settings (engine defaults where absent). */
export interface LoadSettings {
  maxContext?: number;
  maxRunning?: number;
  maxStepTokens?: number;
  kvCacheTokens?: number;
  /** Reuse cached prompt pages (default true). */
  prefixCache?: boolean;
}

/** A generation as the engine takes it: the options, its precedence and its prefix-cache key. */
export interface GenerateRequest extends Omit<GenerateOptions, "signal"> {
  priority?: Priority;
  cacheKey?: string | null;
}

export interface DeviceInfo {
  description: string;
  features: { shaderF16: boolean; subgroups: boolean };
  /** The adapter runs on the CPU (a software driver such as lavapipe). */
  cpu: boolean;
}

export interface EngineStats {
  device: DeviceInfo | null;
  models: (ModelSummary & BatcherStats & {
    path: string; weightBytes: number; dispatchesPerToken: number;
    /** Device memory held: weights, KV pools, step buffers. */
    deviceBytes: number;
  })[];
  generations: { started: number; finished: number; cancelled: number; failed: number; tokens: number };
}

/** Host -> worker. `req` ties replies to requests. */
export type HostMessage =
  | { type: "load"; req: number; id: string; ref: string; settings?: LoadSettings }
  | { type: "generate"; req: number; modelId: string; promptIds: number[]; opts: GenerateRequest }
  | { type: "cancel"; req: number }
  | { type: "unload"; req: number; id: string }
  | { type: "stats"; req: number }
  /** Acquires the device now (it is otherwise acquired by the first load) and describes it. */
  | { type: "device"; req: number }
  | { type: "close"; req: number };

/** Worker -> host. */
export type WorkerMessage =
  | { type: "ready" }
  | { type: "loaded"; req: number; model: ModelSummary }
  /** While loading: file tensor bytes on the device so far, of `total`. */
  | { type: "progress"; req: number; done: number; total: number }
  | { type: "token"; req: number; token: GeneratedToken }
  | { type: "done"; req: number; finishReason: FinishReason; timings: GenerationTimings }
  | { type: "unloaded"; req: number }
  | { type: "stats"; req: number; stats: EngineStats }
  | { type: "device"; req: number; device: DeviceInfo }
  | { type: "closed"; req: number }
  | { type: "failure"; req: number; message: string };
