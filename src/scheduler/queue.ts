// Runs generations on the engine, many at once per model. The engine batches whatever it is
// sent (src/engine/batcher.ts: every running sequence advances in each step); this scheduler
// decides what it is sent and when, by completion window (windows.ts): `asap` work at once,
// `standard` work into the capacity left, gathered into fuller batches and never older than the
// age bound. It also bounds what waits: past `maxQueued` sync requests waiting for a model (or
// `maxQueuedPerKey` for one key) a new sync request is refused before it is stored; background
// work is never refused (it waits, and its record is in the store).
//
// The scheduler owns a record's life after it is accepted: it claims the record (queued ->
// in_progress, a conditional update, so a record cancelled meanwhile is skipped), then stores
// completed / incomplete / cancelled / failed with the output. When the server shuts down, work
// it interrupts goes back to `queued` for the next start instead of being marked cancelled.

import type { Engine } from "./engine.ts";
import type { CompletionWindow, Generation, GenerationResult, OnDelta, OutputToken } from "../generation.ts";
import type { ResponseStore } from "../store/responses.ts";
import type { Tokenizer } from "../engine/tokenizer/types.ts";
import { DEFAULT_WINDOW_SETTINGS, WindowQueue, type WindowSettings } from "./windows.ts";

/** A generation ready to run: its prompt already tokenized and its budget fixed. */
export interface PreparedGeneration {
  recordId: string;
  generation: Generation;
  promptIds: number[];
  /** Output budget after clamping to the model's context. */
  maxTokens: number;
  tokenizer: Tokenizer;
  /** Who asked (an API key id, else the organization): the per-key queue bound counts by it. */
  owner?: string;
}

export interface RunOptions {
  onDelta?: OnDelta;
  /** Aborting cancels the generation, queued or running (a client that went away, or a cancel). */
  signal?: AbortSignal;
  /** Background work: never refused, and not counted against the sync queue bounds. */
  background?: boolean;
}

/** Hooks for metrics; the scheduler does not know how they are exported. */
export interface SchedulerObserver {
  queueDepth?(model: string, window: string, depth: number): void;
  /** A job left the queue for the engine after waiting `seconds`. */
  queueWait?(model: string, window: string, seconds: number): void;
  finished?(model: string, result: GenerationResult): void;
}

export interface AdmissionSettings {
  /** Sync requests that may wait per model before new ones get 503 (0: no bound). */
  maxQueued: number;
  /** Sync requests one key may have waiting before its new ones get 429 (0: no bound). */
  maxQueuedPerKey: number;
}

export const DEFAULT_ADMISSION: AdmissionSettings = { maxQueued: 256, maxQueuedPerKey: 0 };

export interface SchedulerSettings extends WindowSettings, AdmissionSettings {}

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

/** A sync request refused at admission: the model's queue (`overloaded`) or the key's (`rate_limited`) is full. */
export class QueueFull extends Error {
  constructor(readonly reason: "overloaded" | "rate_limited", message: string) {
    super(message);
    this.name = "QueueFull";
  }
}

/** How long `stop` waits for running generations to let go of the engine. */
const STOP_GRACE_MS = 5_000;

interface Entry {
  job: PreparedGeneration;
  opts: RunOptions;
  window: CompletionWindow;
  queuedAt: number;
  resolve(r: GenerationResult): void;
  reject(e: unknown): void;
  onAbort(): void;
}

interface Lane {
  model: string;
  /** Sequences the engine runs at once for this model. */
  capacity: number;
  waiting: WindowQueue<Entry>;
  running: Set<Entry>;
  timer: ReturnType<typeof setTimeout> | null;
}

export class Scheduler {
  private readonly lanes = new Map<string, Lane>();
  private readonly capacities = new Map<string, number>();
  private readonly settings: SchedulerSettings;
  private stopped = false;
  /** Aborted at shutdown: stops the engine work in flight. */
  private readonly shutdown = new AbortController();

  constructor(
    private readonly engine: Engine,
    private readonly store: ResponseStore,
    private readonly observer: SchedulerObserver = {},
    settings: Partial<SchedulerSettings> = {},
  ) {
    this.settings = { ...DEFAULT_WINDOW_SETTINGS, ...DEFAULT_ADMISSION, ...settings };
  }

  /** How many sequences the engine runs at once for `model` (from its load). */
  setCapacity(model: string, capacity: number): void {
    this.capacities.set(model, Math.max(1, capacity));
    const lane = this.lanes.get(model);
    if (lane) lane.capacity = Math.max(1, capacity);
  }

  private lane(model: string): Lane {
    let lane = this.lanes.get(model);
    if (!lane) {
      lane = { model, capacity: this.capacities.get(model) ?? 1, waiting: new WindowQueue(this.settings), running: new Set(), timer: null };
      this.lanes.set(model, lane);
    }
    return lane;
  }

  /** Requests waiting or running for a model. */
  depth(model: string): number {
    const lane = this.lanes.get(model);
    return lane ? lane.waiting.length + lane.running.size : 0;
  }

  /** Total requests waiting or running. */
  totalDepth(): number {
    let n = 0;
    for (const model of this.lanes.keys()) n += this.depth(model);
    return n;
  }

  /**
   * Refuses a new sync request when its model's queue or its key's is full (QueueFull), before
   * anything is stored. Jobs sent to the engine beyond its capacity count as waiting too.
   */
  admit(model: string, owner: string | undefined): void {
    const { maxQueued, maxQueuedPerKey } = this.settings;
    const lane = this.lanes.get(model);
    if (!lane) return;
    const sync = (e: Entry) => !e.opts.background;
    const queued = [...lane.waiting].filter(sync);
    const overflow = Math.max(0, [...lane.running].filter(sync).length - lane.capacity);
    if (maxQueued > 0 && queued.length + overflow >= maxQueued) {
      throw new QueueFull("overloaded", `The server is overloaded: ${queued.length + overflow} requests are already waiting for the model '${model}'. Retry later.`);
    }
    if (maxQueuedPerKey > 0 && owner !== undefined && queued.filter((e) => e.job.owner === owner).length >= maxQueuedPerKey) {
      throw new QueueFull("rate_limited", `Too many requests waiting for this API key (${maxQueuedPerKey} at most). Retry later.`);
    }
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
    const lane = this.lane(job.generation.model);
    return new Promise<GenerationResult>((resolve, reject) => {
      const entry: Entry = {
        job, opts, resolve, reject, window: job.generation.window, queuedAt: performance.now(),
        // A request abandoned while waiting leaves the queue at once instead of at its turn.
        onAbort: () => {
          if (!lane.waiting.remove(entry)) return;
          this.report(lane, entry.window);
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
      lane.waiting.push(entry);
      this.report(lane, entry.window);
      this.pump(lane);
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
      if (lane.timer) clearTimeout(lane.timer);
      for (const w of lane.waiting.drain()) {
        w.opts.signal?.removeEventListener("abort", w.onAbort);
        w.reject(new SchedulerStopped());
      }
      for (const r of lane.running) {
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

  private report(lane: Lane, window: CompletionWindow): void {
    if (!this.observer.queueDepth) return;
    let depth = lane.waiting.count(window);
    for (const r of lane.running) if (r.window === window) depth++;
    this.observer.queueDepth(lane.model, window, depth);
  }

  /** Sends the engine what the window policy lets go now, and sets a timer for its next decision. */
  private pump(lane: Lane): void {
    if (this.stopped) return;
    if (lane.timer) { clearTimeout(lane.timer); lane.timer = null; }
    const now = performance.now();
    for (const { job: entry, priority } of lane.waiting.take(now, lane.running.size, lane.capacity)) {
      entry.opts.signal?.removeEventListener("abort", entry.onAbort);
      lane.running.add(entry);
      this.observer.queueWait?.(lane.model, entry.window, (now - entry.queuedAt) / 1000);
      this.execute(entry.job, entry.opts, priority).then((r) => entry.resolve(r), (e) => entry.reject(e)).finally(() => {
        lane.running.delete(entry);
        this.report(lane, entry.window);
        this.pump(lane);
      });
    }
    const at = lane.waiting.nextDecisionAt(now);
    if (at !== null) {
      lane.timer = setTimeout(() => { lane.timer = null; this.pump(lane); }, Math.max(1, at - now));
      lane.timer.unref?.();
    }
  }

  private async execute(job: PreparedGeneration, opts: RunOptions, priority: "asap" | "standard"): Promise<GenerationResult> {
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
          ...(gen.logprobs && gen.topLogprobs ? { topLogprobs: gen.topLogprobs } : {}),
          ...(gen.constraint ? { constraint: gen.constraint } : {}),
          priority,
          cacheKey: gen.promptCacheKey ?? null,
        },
        (t) => {
          firstTokenAt ??= performance.now();
          const piece = decoder.push(t.id);
          const token: OutputToken = {
            id: t.id, text: piece,
            ...(t.logprob !== undefined ? { logprob: t.logprob } : {}),
            ...(t.top ? { top: t.top.map((a) => ({ id: a.id, text: pieceText(job.tokenizer, a.id), logprob: a.logprob })) } : {}),
          };
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
      usage: { inputTokens: job.promptIds.length, cachedTokens: outcome.timings.cachedTokens ?? 0, outputTokens: tokens.length },
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

/** One token's text on its own (a byte token's partial character comes out as U+FFFD). */
function pieceText(tokenizer: Tokenizer, id: number): string {
  const d = tokenizer.decoder();
  return d.push(id) + d.flush();
}
