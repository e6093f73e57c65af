// Runs generations on the engine, one at a time per model, in arrival order. The engine runs
// one sequence per model for now, so the queue is what keeps concurrent requests from
// interleaving; completion windows and batching build on this later.
//
// The scheduler owns a record's life after it is accepted: in_progress when its turn comes,
// then completed / incomplete / cancelled / failed with the output, in the store.

import type { Engine } from "./engine.ts";
import type { Generation, GenerationResult, OnDelta, OutputToken } from "../generation.ts";
import type { ResponseStore } from "../store/responses.ts";
import type { Tokenizer } from "../engine/tokenizer/types.ts";

/** A generation ready to run: its prompt already tokenized and its budget fixed. */
export interface PreparedGeneration {
  recordId: string;
  generation: Generation;
  promptIds: number[];
  /** Output budget after clamping to the model's context. */
  maxTokens: number;
  tokenizer: Tokenizer;
}

export interface RunOptions {
  onDelta?: OnDelta;
  /** Aborting cancels the generation, queued or running (a client that went away). */
  signal?: AbortSignal;
}

/** Hooks for metrics; the scheduler does not know how they are exported. */
export interface SchedulerObserver {
  queueDepth?(model: string, window: string, depth: number): void;
  finished?(model: string, result: GenerationResult): void;
}

export class GenerationFailed extends Error {
  constructor(message: string, readonly cause?: unknown) {
    super(message);
    this.name = "GenerationFailed";
  }
}

interface Lane {
  tail: Promise<void>;
  depth: number;
}

export class Scheduler {
  private readonly lanes = new Map<string, Lane>();

  constructor(
    private readonly engine: Engine,
    private readonly store: ResponseStore,
    private readonly observer: SchedulerObserver = {},
  ) {}

  /** Requests waiting or running for a model. */
  depth(model: string): number {
    return this.lanes.get(model)?.depth ?? 0;
  }

  /** Total requests waiting or running. */
  totalDepth(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.depth;
    return n;
  }

  /**
   * Queues the generation behind the model's earlier ones and resolves with its result once
   * finished (the record is updated first). Rejects with GenerationFailed if the engine fails.
   */
  run(job: PreparedGeneration, opts: RunOptions = {}): Promise<GenerationResult> {
    const model = job.generation.model;
    let lane = this.lanes.get(model);
    if (!lane) {
      lane = { tail: Promise.resolve(), depth: 0 };
      this.lanes.set(model, lane);
    }
    const l = lane;
    l.depth++;
    this.observer.queueDepth?.(model, job.generation.window, l.depth);
    let leave = () => {
      leave = () => {};
      l.depth--;
      this.observer.queueDepth?.(model, job.generation.window, l.depth);
    };
    return new Promise<GenerationResult>((resolve, reject) => {
      let started = false;
      // A request abandoned while waiting leaves the queue at once instead of at its turn.
      const onAbort = () => {
        if (started) return;
        const result = emptyResult("cancelled", job.promptIds.length);
        this.store.finish(job.recordId, result);
        leave();
        resolve(result);
      };
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      const turn = l.tail.then(async () => {
        if (opts.signal?.aborted) return;
        started = true;
        opts.signal?.removeEventListener("abort", onAbort);
        try {
          resolve(await this.execute(job, opts));
        } catch (err) {
          reject(err);
        } finally {
          leave();
        }
      });
      l.tail = turn;
    });
  }

  private async execute(job: PreparedGeneration, opts: RunOptions): Promise<GenerationResult> {
    const { generation: gen, recordId } = job;
    this.store.markStarted(recordId);
    const decoder = job.tokenizer.decoder();
    const tokens: OutputToken[] = [];
    let text = "";
    let firstTokenAt: number | null = null;
    const startedAt = performance.now();
    let outcome: Awaited<ReturnType<Engine["generate"]>>;
    try {
      outcome = await this.engine.generate(
        gen.model,
        job.promptIds,
        {
          maxTokens: job.maxTokens,
          sampling: { temperature: gen.temperature, topP: gen.topP },
          stopIds: job.tokenizer.stopIds,
          logprobs: gen.logprobs,
        },
        (t) => {
          firstTokenAt ??= performance.now();
          const piece = decoder.push(t.id);
          const token: OutputToken = { id: t.id, text: piece, ...(t.logprob !== undefined ? { logprob: t.logprob } : {}) };
          tokens.push(token);
          text += piece;
          opts.onDelta?.(piece, token);
        },
        opts.signal,
      );
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (opts.signal?.aborted) {
        const result = partialResult("cancelled", text, tokens, job.promptIds.length, startedAt, firstTokenAt);
        this.store.finish(recordId, result);
        return result;
      }
      this.store.fail(recordId, { code: "server_error", message: `The engine failed: ${message}` });
      throw new GenerationFailed(`The engine failed: ${message}`, err);
    }
    const tail = decoder.flush();
    if (tail && tokens.length > 0) {
      const last = tokens[tokens.length - 1];
      last.text += tail;
      text += tail;
      opts.onDelta?.(tail, last);
    }
    const status = outcome.finishReason === "length" ? "incomplete" : outcome.finishReason === "cancelled" ? "cancelled" : "completed";
    const result: GenerationResult = {
      status,
      text,
      tokens,
      finishReason: outcome.finishReason,
      usage: { inputTokens: job.promptIds.length, cachedTokens: 0, outputTokens: tokens.length },
      timeToFirstTokenMs: firstTokenAt === null ? null : firstTokenAt - startedAt,
      decodeMs: outcome.timings.decodeMs,
    };
    this.store.finish(recordId, result);
    this.observer.finished?.(gen.model, result);
    return result;
  }
}

function emptyResult(status: GenerationResult["status"], inputTokens: number): GenerationResult {
  return {
    status, text: "", tokens: [], finishReason: "cancelled",
    usage: { inputTokens, cachedTokens: 0, outputTokens: 0 }, timeToFirstTokenMs: null, decodeMs: 0,
  };
}

function partialResult(
  status: GenerationResult["status"], text: string, tokens: OutputToken[], inputTokens: number,
  startedAt: number, firstTokenAt: number | null,
): GenerationResult {
  return {
    status, text, tokens, finishReason: "cancelled",
    usage: { inputTokens, cachedTokens: 0, outputTokens: tokens.length },
    timeToFirstTokenMs: firstTokenAt === null ? null : firstTokenAt - startedAt,
    decodeMs: performance.now() - startedAt,
  };
}
