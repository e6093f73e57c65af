// Every message between a page and its engine worker (src/browser/worker.ts). The page sends
// conversations and gets text back: tokenizing, the chat template and the grammar all run in
// the worker, so the page's thread only draws.

import type { GenerationMessage } from "../generation.ts";
import type { OutputConstraint } from "../engine/grammar/constraint.ts";
import type { FinishReason, GenerationTimings } from "../engine/types.ts";

export interface WorkerChat {
  messages: GenerationMessage[];
  /** null: up to the context. */
  maxTokens: number | null;
  temperature: number;
  topP: number;
  seed?: number;
  constraint?: OutputConstraint | null;
}

export interface WorkerModelInfo {
  arch: string;
  nCtx: number;
  nVocab: number;
  /** The GPU adapter, as the browser names it. */
  adapter: string;
  features: { shaderF16: boolean; subgroups: boolean };
}

/** Page -> worker; `req` ties replies to requests. */
export type PageMessage =
  /** The model file: a Blob is read in slices as tensors upload (files beyond one ArrayBuffer work). */
  | { type: "load"; req: number; name: string; file: Blob | ArrayBuffer; maxContext?: number }
  | { type: "chat"; req: number; chat: WorkerChat }
  | { type: "cancel"; req: number }
  | { type: "unload"; req: number };

/** Worker -> page. */
export type EngineWorkerMessage =
  | { type: "ready" }
  | { type: "progress"; req: number; done: number; total: number }
  | { type: "loaded"; req: number; model: WorkerModelInfo }
  /** Text the output added (empty while a multi-byte character is incomplete). */
  | { type: "delta"; req: number; text: string }
  | { type: "done"; req: number; finishReason: FinishReason; promptTokens: number; outputTokens: number; timings: GenerationTimings }
  | { type: "unloaded"; req: number }
  /** `code`: "prompt_too_long" or "invalid_prompt" for the caller's mistakes; absent for failures. */
  | { type: "failure"; req: number; message: string; code?: string };
