// What the scheduler needs from the engine: exactly the surface of `EngineClient`
// (src/engine/client.ts), named here so the scheduler depends on a contract, not a module.

import type { FinishReason, GeneratedToken, GenerateOptions, GenerationTimings } from "../engine/types.ts";
import type { EngineStats } from "../engine/protocol.ts";

export interface LoadedModelInfo {
  id: string;
  arch: string;
  nVocab: number;
  nCtx: number;
}

export interface Engine {
  load(id: string, ref: string, opts?: { maxContext?: number }): Promise<LoadedModelInfo>;
  generate(
    modelId: string,
    promptIds: number[],
    opts: Omit<GenerateOptions, "signal">,
    onToken: (t: GeneratedToken) => void,
    signal?: AbortSignal,
  ): Promise<{ finishReason: FinishReason; timings: GenerationTimings }>;
  unload(id: string): Promise<void>;
  stats(): Promise<EngineStats>;
  close(): Promise<void>;
}
