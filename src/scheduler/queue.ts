// Runs generations on the engine, one at a time per model. The engine runs one sequence per
// model for now, so the queue is what keeps concurrent requests from interleaving. Within a
// model, waiting `asap` work goes before waiting `standard` work, each in arrival order (the
// simple rule until the completion-window scheduler with aging lands).
//
// The scheduler owns a record's life after it is accepted: it claims the record (queued ->
// in_progress, a conditional update, so a record cancelled meanwhile is skipped), then stores
// completed / incomplete / cancelled / failed with the output. When the server shuts down, work
// it interrupts goes back to `queued` for the next start instead of being marked cancelled.

import type { Engine } from "./engine.ts";
import type { CompletionWindow, Generation, GenerationResult, OnDelta, OutputToken } from "../generation.ts";
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
  /** Aborting cancels the generation, queued or running (a client that went away, or a cancel). */
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

/** The server is stopping: the record was put back in the queue for the next start. */
export class SchedulerStopped extends GenerationFailed {
  constructor() {
    super("The server is shutting down; the request will run again when it restarts.");
    this.name = "SchedulerStopped";
  }
}

/** How long `stop` waits for running generations to let go of the engine. */
const STOP_GRACE_MS = 5_000;

/** Which waiting window goes first: lower runs earlier. */
const WINDOW_RANK: Record<CompletionWindow, number> = { asap: 0, standard: 1 };

interface Waiting {
  job: PreparedGeneration;
  opts: RunOptions;
  resolve(r: GenerationResult): void;
  reject(e: unknown): void;
  onAbort(): void;
}

interface Lane {
  running: Waiting | null;
  waiting: Waiting[];
}

export class Scheduler {
  private readonly lanes = new Map<string, Lane>();
  private stopped = false;
  /** Aborted at shutdown: stops the engine work in flight. */
  private readonly shutdown = new AbortController();

  constructor(
    private readonly engine: Engine,
    private readonly store: ResponseStore,
    private readonly observer: SchedulerObserver = {},
  ) {}

  /** Requests waiting or running for a model. */
  depth(model: string): number {
    const lane = this.lanes.get(model);
    return lane ? lane.waiting.length + (lane.running ? 1 : 0) : 0;
  }

  /** Total requests waiting or running. */
  totalDepth(): number {
    let n = 0;
    for (const model of this.lanes.keys()) n += this.depth(model);
    return n;
  }

  /**
   * Queues the generation and resolves with its result once finished (the record is updated
   * first). Rejects with GenerationFailed if the engine fails, SchedulerStopped at shutdown.
   */
  run(job: PreparedGeneration, opts: RunOptions = {}): Promise<GenerationResult> {
    if (this.stopped) {
      this.store.requeue(job.recordId);
      return Promise.reject(new SchedulerStopped());
    }
    const model = job.generation.model;
    let lane = this.lanes.get(model);
    if (!lane) this.lanes.set(model, (lane = { running: null, waiting: [] }));
    const l = lane;
    return new Promise<GenerationResult>((resolve, reject) => {
      const entry: Waiting = {
        job, opts, resolve, reject,
        // A request abandoned while waiting leaves the queue at once instead of at its turn.
        onAbort: () => {
          const at = l.waiting.indexOf(entry);
          if (at < 0) return;
          l.waiting.splice(at, 1);
          this.report(model, job.generation.window);
          if (this.stopped) return reject(new SchedulerStopped());
          const result = emptyResult("cancelled", job.promptIds.length);
          this.store.finish(job.recordId, result);
          resolve(result);
        },
      };
      if (opts.signal?.aborted) {
        const result = emptyResult("cancelled", job.promptIds.length);
        this.store.finish(job.recordId, result);
        return resolve(result);
      }
      opts.signal?.addEventListener("abort", entry.onAbort, { once: true });
      this.enqueue(l, entry);
      this.report(model, job.generation.window);
      this.pump(model, l);
    });
  }

  /**
   * Stops taking work: waiting jobs and the ones running are interrupted and their records put
   * back to `queued`, to run again on the next start. Resolves once the running ones let go.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const running: Promise<unknown>[] = [];
    for (const lane of this.lanes.values()) {
      for (const w of lane.waiting.splice(0)) {
        w.opts.signal?.removeEventListener("abort", w.onAbort);
        w.reject(new SchedulerStopped());
      }
      if (lane.running) {
        const r = lane.running;
        running.push(new Promise<void>((done) => {
          const { resolve, reject } = r;
          r.resolve = (v) => (resolve(v), done());
          r.reject = (e) => (reject(e), done());
        }));
      }
    }
    this.shutdown.abort();
    // An engine that does not answer its abort must not hold the shutdown: the records are put
    // back to `queued` by `interrupted` when it does answer, and by the next start's recovery
    // (which reruns in_progress records) when it never does.
    const grace = new Promise<void>((done) => setTimeout(done, STOP_GRACE_MS).unref?.());
    await Promise.race([Promise.allSettled(running), grace]);
  }

  /** Inserts after every waiting job of the same or a more urgent window. */
  private enqueue(lane: Lane, entry: Waiting): void {
    const rank = WINDOW_RANK[entry.job.generation.window];
    let at = lane.waiting.length;
    while (at > 0 && WINDOW_RANK[lane.waiting[at - 1].job.generation.window] > rank) at--;
    lane.waiting.splice(at, 0, entry);
  }

  private report(model: string, window: CompletionWindow): void {
    if (!this.observer.queueDepth) return;
    const lane = this.lanes.get(model);
    if (!lane) return;
    const inWindow = (w: Waiting | null) => (w && w.job.generation.window === window ? 1 : 0);
    const depth = lane.waiting.reduce((n, w) => n + inWindow(w), inWindow(lane.running));
    this.observer.queueDepth(model, window, depth);
  }

  private pump(model: string, lane: Lane): void {
    if (lane.running || this.stopped) return;
    const next = lane.waiting.shift();
    if (!next) return;
    next.opts.signal?.removeEventListener("abort", next.onAbort);
    lane.running = next;
    this.execute(next.job, next.opts).then((r) => next.resolve(r), (e) => next.reject(e)).finally(() => {
      lane.running = null;
      this.report(model, next.job.generation.window);
      this.pump(model, lane);
    });
  }

  private async execute(job: PreparedGeneration, opts: RunOptions): Promise<GenerationResult> {
    const { generation: gen, recordId } = job;
    if (opts.signal?.aborted) {
      const result = emptyResult("cancelled", job.promptIds.length);
      this.store.finish(recordId, result);
      return result;
    }
    if (!this.store.claim(recordId)) {
      // Cancelled (or taken by another process) while it waited: nothing to run.
      return emptyResult("cancelled", job.promptIds.length);
    }
    const signal = opts.signal ? AbortSignal.any([opts.signal, this.shutdown.signal]) : this.shutdown.signal;
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
          ...(gen.constraint ? { constraint: gen.constraint } : {}),
        },
        (t) => {
          firstTokenAt ??= performance.now();
          const piece = decoder.push(t.id);
          const token: OutputToken = { id: t.id, text: piece, ...(t.logprob !== undefined ? { logprob: t.logprob } : {}) };
          tokens.push(token);
          text += piece;
          opts.onDelta?.(piece, token);
        },
        signal,
      );
    } catch (err) {
      if (this.stopped) return this.interrupted(recordId);
      const message = err instanceof Error ? err.message : String(err);
      if (signal.aborted) {
        const result = partialResult("cancelled", text, tokens, job.promptIds.length, startedAt, firstTokenAt);
        this.store.finish(recordId, result);
        return result;
      }
      this.store.fail(recordId, { code: "server_error", message: `The engine failed: ${message}` });
      throw new GenerationFailed(`The engine failed: ${message}`, err);
    }
    if (this.stopped && outcome.finishReason === "cancelled") return this.interrupted(recordId);
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

  /** Shutdown cut the run short: back to the queue, to run again from the start next time. */
  private interrupted(recordId: string): never {
    this.store.requeue(recordId);
    throw new SchedulerStopped();
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
