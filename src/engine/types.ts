// Contracts between the engine and its users. The engine knows token ids and sampling settings,
// never HTTP, SQL or which API surface a request came from.

import type { OutputConstraint } from "./grammar/constraint.ts";

export interface SamplingParams {
  /** 0 means greedy (argmax). */
  temperature: number;
  /** Nucleus sampling mass in [0, 1]; 1 disables it, 0 keeps only the most likely token (greedy). */
  topP: number;
  /** Seed for the sampler's random stream; omitted means a random seed. */
  seed?: number;
}

export interface GenerateOptions {
  maxTokens: number;
  sampling: SamplingParams;
  /** Token ids that end generation (EOS/EOT); the stopping token is not emitted. */
  stopIds?: number[];
  /** Return the log-probability of each sampled token. */
  logprobs?: boolean;
  /** Also return the most likely tokens at each step with theirs (0 to 20; needs `logprobs`). */
  topLogprobs?: number;
  /** Output structure enforced while decoding (plain JSON: it crosses the worker boundary). */
  constraint?: OutputConstraint;
  signal?: AbortSignal;
}

export interface GeneratedToken {
  id: number;
  logprob?: number;
  /** The most likely tokens at this step, most likely first (with `topLogprobs`). */
  top?: { id: number; logprob: number }[];
}

export type FinishReason = "stop" | "length" | "cancelled";

export interface GenerationTimings {
  promptTokens: number;
  /** Prompt tokens whose KV came from the prefix cache instead of being computed. */
  cachedTokens: number;
  outputTokens: number;
  prefillMs: number;
  decodeMs: number;
}

/** A model resident on a GPU device (in-process; the worker wraps one of these per model). */
export interface LoadedModel {
  readonly arch: string;
  readonly nVocab: number;
  readonly nCtx: number;
  /** Ends the sequence evalLogits appends to (its KV pages go back to the pool). */
  reset(): void;
  /** Appends ids to the evalLogits sequence and returns the logits after the last one. */
  evalLogits(ids: number[]): Promise<Float32Array>;
  /**
   * Runs a sequence of its own (any number at once, batched together): prefills the prompt,
   * then yields sampled tokens until a stop id or maxTokens.
   */
  generate(promptIds: number[], opts: GenerateOptions): AsyncGenerator<GeneratedToken, { finishReason: FinishReason; timings: GenerationTimings }>;
  dispose(): void;
}
