// Every message between the engine worker and its host, in one place. Messages are small:
// token ids in, token ids (and logprobs) out, status and errors.

import type { FinishReason, GeneratedToken, GenerateOptions, GenerationTimings } from "./types.ts";

export interface ModelSummary {
  id: string;
  arch: string;
  nVocab: number;
  nCtx: number;
}

export interface EngineStats {
  device: { description: string; features: { shaderF16: boolean; subgroups: boolean } } | null;
  models: (ModelSummary & {
    busy: boolean; path: string; weightBytes: number; dispatchesPerToken: number;
    /** Positions of the KV cache holding the current (or last) sequence, out of nCtx. */
    kvTokens: number;
  })[];
  generations: { started: number; finished: number; cancelled: number; failed: number; tokens: number };
}

/** Host -> worker. `req` ties replies to requests. */
export type HostMessage =
  | { type: "load"; req: number; id: string; ref: string; maxContext?: number }
  | { type: "generate"; req: number; modelId: string; promptIds: number[]; opts: Omit<GenerateOptions, "signal"> }
  | { type: "cancel"; req: number }
  | { type: "unload"; req: number; id: string }
  | { type: "stats"; req: number }
  | { type: "close"; req: number };

/** Worker -> host. */
export type WorkerMessage =
  | { type: "ready" }
  | { type: "loaded"; req: number; model: ModelSummary }
  | { type: "token"; req: number; token: GeneratedToken }
  | { type: "done"; req: number; finishReason: FinishReason; timings: GenerationTimings }
  | { type: "unloaded"; req: number }
  | { type: "stats"; req: number; stats: EngineStats }
  | { type: "closed"; req: number }
  | { type: "failure"; req: number; message: string };
