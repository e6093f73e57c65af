// A model resident on a device: the LoadedModel contract over a Batcher. Every `generate` is a
// sequence of its own, run in the same steps as every other one in progress; `evalLogits`
// appends to one long-lived sequence (until `reset`) and hands back the logits after its last
// token.

import { MAX_TOP_LOGPROBS } from "./gpu/kernels.ts";
import type { FinishReason, GeneratedToken, GenerateOptions, GenerationTimings, LoadedModel } from "./types.ts";
import type { HParams } from "./model/hparams.ts";
import type { ForwardPass } from "./forward.ts";
import { Batcher, type BatcherStats } from "./batcher.ts";
import type { Sequence, SequenceOutcome, SequenceRequest } from "./sequence.ts";
import type { GrammarMatcher } from "./grammar/index.ts";
import type { StepShape } from "./gpu/kernels.ts";

export interface RunnerOptions {
  nCtx: number;
  shape: StepShape;
  kvPages: number;
  prefixCache: boolean;
}

/** What a generation adds to GenerateOptions inside the engine. */
export interface SequenceOptions extends GenerateOptions {
  priority?: SequenceRequest["priority"];
  cacheKey?: string | null;
}

export class ModelRunner implements LoadedModel {
  readonly arch: string;
  readonly nVocab: number;
  readonly nCtx: number;
  readonly batcher: Batcher;
  /** The sequence evalLogits appends to. */
  private scratch: Sequence | null = null;
  private scratchWaiter: { resolve: (l: Float32Array) => void; reject: (e: Error) => void } | null = null;

  constructor(
    device: GPUDevice,
    readonly hparams: HParams,
    private fwd: ForwardPass,
    readonly options: RunnerOptions,
    private onDispose: () => void,
    /** Bytes of weights on the device. */
    readonly weightBytes = 0,
  ) {
    this.arch = hparams.arch;
    this.nVocab = hparams.nVocab;
    this.nCtx = options.nCtx;
    this.batcher = new Batcher(device, fwd, { nCtx: options.nCtx, nVocab: hparams.nVocab, shape: options.shape, kvPages: options.kvPages, prefixCache: options.prefixCache });
  }

  /** Bytes of device memory the model holds: its weights, KV pools and step buffers. */
  get deviceBytes(): number {
    return this.weightBytes + this.fwd.deviceBytes;
  }

  get dispatchesPerToken(): number {
    return this.fwd.dispatchesPerToken;
  }

  /** Sequences this model can run at once. */
  get maxRunning(): number {
    return this.options.shape.maxRows;
  }

  stats(): BatcherStats {
    return this.batcher.stats();
  }

  /** Ends the evalLogits sequence (its pages go back to the pool). */
  reset(): void {
    if (this.scratch) this.batcher.close(this.scratch);
    this.scratch = null;
  }

  private checkIds(ids: number[], from: number) {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.nVocab) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${this.nVocab})`);
    }
    if (from + ids.length > this.nCtx) {
      throw new RangeError(`sequence of ${from + ids.length} tokens exceeds the context of ${this.nCtx}`);
    }
  }

  async evalLogits(ids: number[]): Promise<Float32Array> {
    if (ids.length === 0) throw new RangeError("evalLogits needs at least one token");
    if (this.scratchWaiter) throw new Error("evalLogits is already running on this model (await the previous call)");
    this.checkIds(ids, this.scratch?.tokens.length ?? 0);
    const result = new Promise<Float32Array>((resolve, reject) => { this.scratchWaiter = { resolve, reject }; });
    const settle = (f: (w: NonNullable<ModelRunner["scratchWaiter"]>) => void) => {
      const w = this.scratchWaiter;
      this.scratchWaiter = null;
      if (w) f(w);
    };
    if (!this.scratch) {
      this.scratch = this.batcher.submit(
        { promptIds: ids, maxTokens: 0, sampling: { temperature: 0, topP: 1 } },
        { token: () => {}, done: () => settle((w) => w.reject(new Error("the evalLogits sequence ended"))), failed: (e) => settle((w) => w.reject(e)) },
        { kind: "logits", deliver: (l) => settle((w) => w.resolve(l)) },
      );
    } else {
      this.batcher.extend(this.scratch, ids);
    }
    return result;
  }

  /** `matcher` (constrained decoding) restricts every sampled token, the first one included. */
  async *generate(promptIds: number[], opts: SequenceOptions, matcher?: GrammarMatcher): AsyncGenerator<GeneratedToken, { finishReason: FinishReason; timings: GenerationTimings & { cachedTokens: number } }> {
    if (promptIds.length === 0) throw new RangeError("the prompt must contain at least one token");
    if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0) throw new RangeError(`maxTokens must be a non-negative integer, got ${opts.maxTokens}`);
    const { temperature, topP } = opts.sampling;
    if (!(temperature >= 0)) throw new RangeError(`temperature must be >= 0, got ${temperature}`);
    if (!(topP >= 0 && topP <= 1)) throw new RangeError(`top_p must be in [0, 1], got ${topP}`);
    const topK = opts.topLogprobs ?? 0;
    if (!(Number.isInteger(topK) && topK >= 0 && topK <= MAX_TOP_LOGPROBS)) throw new RangeError(`topLogprobs must be an integer from 0 to ${MAX_TOP_LOGPROBS}, got ${topK}`);
    // top_p 0 keeps only the most likely token: that is the greedy choice
    const sampling = topP === 0 ? { temperature: 0, topP: 1 } : opts.sampling;
    this.checkIds(promptIds, 0);
    const timings = { promptTokens: promptIds.length, outputTokens: 0, prefillMs: 0, decodeMs: 0, cachedTokens: 0 };
    if (opts.maxTokens === 0 || opts.signal?.aborted) return { finishReason: opts.signal?.aborted ? "cancelled" : "length", timings };

    // tokens and the end arrive from the batcher's loop; this generator hands them out in order
    const queue: GeneratedToken[] = [];
    let end: SequenceOutcome | null = null;
    let error: Error | null = null;
    let notify: (() => void) | null = null;
    const wake = () => { notify?.(); notify = null; };
    const seq = this.batcher.submit(
      { promptIds, maxTokens: opts.maxTokens, sampling, stopIds: opts.stopIds, logprobs: opts.logprobs, topLogprobs: opts.topLogprobs, matcher, priority: opts.priority, cacheKey: opts.cacheKey, signal: opts.signal },
      {
        token: (t) => { queue.push(t); wake(); },
        done: (o) => { end = o; wake(); },
        failed: (e) => { error = e; wake(); },
      },
    );
    const onAbort = () => this.batcher.poke();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift()!;
        if (error) throw error;
        if (end) return end;
        await new Promise<void>((resolve) => { notify = resolve; });
      }
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
      // a caller that stops iterating early ends the sequence
      this.batcher.close(seq);
    }
  }

  dispose(): void {
    this.scratchWaiter?.reject(new Error("the model was unloaded"));
    this.scratchWaiter = null;
    void this.batcher.dispose().finally(() => {
      this.fwd.dispose();
      this.onDispose();
    });
  }
}
