// What the scheduler needs from the engine: exactly the surface of `EngineClient`
// (src/engine/client.ts), named here so the scheduler depends on a contract, not a module.

import type { FinishReason, GeneratedToken, GenerationTimings } from "../engine/types.ts";
import type { EngineStats, GenerateRequest, LoadSettings, ModelSummary } from "../engine/protocol.ts";

export type LoadedModelInfo = ModelSummary;

export interface Engine {
  /** `onProgress`: the file's tensor bytes on the device so far, of `total`. */
  load(id: string, ref: string, settings?: LoadSettings, onProgress?: (done: number, total: number) => void): Promise<LoadedModelInfo>;
  generate(
    modelId: string,
    promptIds: number[],
    opts: GenerateRequest,
    onToken: (t: GeneratedToken) => void,
    signal?: AbortSignal,
  ): Promise<{ finishReason: FinishReason; timings: GenerationTimings }>;
  unload(id: string): Promise<void>;
  stats(): Promise<EngineStats>;
  close(): Promise<void>;
}
