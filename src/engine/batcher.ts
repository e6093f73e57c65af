// Continuous batching for one model: the loop that advances every running sequence together,
// one forward pass per step. Each step takes the decode token of every sequence that has one,
// then chunks of prompts with what is left of the step's token budget, so a long prompt never
// stalls the streams already running; sequences join and leave between steps.
//
// Steps are pipelined: up to PIPELINE_DEPTH are on the GPU at once. A sequence whose last
// sampled token has not come back yet still takes part in the next step, its input token fed on
// the GPU from where the sampler left it (FED[slot]), so a stream never waits for a readback;
// a constrained one (grammar mask) waits for its token. A token sampled ahead past a stop token
// is discarded when the stop is read.
//
// Order between sequences (slots, the token budget, KV pages): `asap` before `standard`, then
// arrival. When the KV pool runs out, the least urgent running sequences are preempted: their
// full pages stay in the prefix cache (kept while the pool allows), the rest is given back, and
// they wait to be run again from their tokens so far (recomputing what was evicted). An `asap`
// sequence that finds every slot taken preempts a `standard` one.

import { MAX_TOP_LOGPROBS } from "./gpu/kernels.ts";
import type { ForwardPass } from "./forward.ts";
import { KvCache, type KvCacheStats } from "./kv-cache.ts";
import { Sequence, type SequenceListener, type SequenceMode, type SequenceRequest } from "./sequence.ts";
import { StepWriter, type SampleRow, type StepToken } from "./step.ts";
import type { StepShape } from "./gpu/kernels.ts";

const MAP_READ = 0x1;
const COPY_DST = 0x8;

/** Steps on the GPU at once: the one being read back, and the next. */
const PIPELINE_DEPTH = 2;

/** Upper bounds of the step-size buckets reported in stats (sequences sampled per step; 0: prompt chunks only). */
const STEP_SIZE_BUCKETS = [0, 1, 2, 4, 8, 16, 32, 64, Infinity] as const;
/** Their labels: "0", "1", "2", "3-4", ..., "65+". */
const STEP_SIZE_LABELS = STEP_SIZE_BUCKETS.map((b, i) => {
  const lo = i === 0 ? 0 : STEP_SIZE_BUCKETS[i - 1] + 1;
  if (b === Infinity) return `${lo}+`;
  return lo === b ? String(b) : `${lo}-${b}`;
});

export interface BatcherOptions {
  nCtx: number;
  nVocab: number;
  shape: StepShape;
  kvPages: number;
  /** Start sequences on cached pages of earlier ones (off: every prompt is computed). */
  prefixCache: boolean;
}

export interface BatcherStats {
  running: number;
  waiting: number;
  kv: KvCacheStats;
  preemptions: number;
  steps: number;
  stepTokens: number;
  stepRows: number;
  /** Steps by how many rows they sampled (the batch size), by bucket label ("1", "3-4", "65+", ...). */
  stepSizes: Record<string, number>;
}

/** A submitted step whose rows are coming back. */
interface Launched {
  rows: Sequence[];
  /** Rows whose logits go back to their sequence (evalLogits). */
  logits: { row: number; seq: Sequence; staging: GPUBuffer }[];
  staging: GPUBuffer | null;
  /** The rows' top logprobs, when some row asked (MAX_TOP_LOGPROBS entries a row). */
  top: GPUBuffer | null;
  done: Promise<void>;
}

export class Batcher {
  readonly kv: KvCache;
  private readonly waiting: Sequence[] = [];
  private readonly running: Sequence[] = [];
  private readonly freeSlots: number[];
  private readonly inFlight: Launched[] = [];
  private readonly stagingPool: GPUBuffer[] = [];
  private readonly writer: StepWriter;
  private readonly maskScratch: Uint32Array<ArrayBuffer>;
  private nextId = 1;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private closed = false;
  private failure: Error | null = null;
  private readonly counts = { preemptions: 0, steps: 0, stepTokens: 0, stepRows: 0, stepSizes: STEP_SIZE_BUCKETS.map(() => 0) };

  constructor(private readonly device: GPUDevice, private readonly fwd: ForwardPass, private readonly opts: BatcherOptions) {
    const { shape, kvPages } = opts;
    if (kvPages * shape.pageSize < opts.nCtx) throw new RangeError(`a KV pool of ${kvPages} pages of ${shape.pageSize} cannot hold one sequence of ${opts.nCtx} tokens`);
    this.kv = new KvCache(kvPages, shape.pageSize);
    this.freeSlots = Array.from({ length: shape.maxRows }, (_, i) => shape.maxRows - 1 - i);
    this.writer = new StepWriter(shape);
    this.maskScratch = new Uint32Array(new ArrayBuffer(4 * fwd.maskWords));
  }

  get pageSize(): number {
    return this.opts.shape.pageSize;
  }

  /** Adds a sequence; its listener hears every token and the end. */
  submit(request: SequenceRequest, listener: SequenceListener, mode?: SequenceMode): Sequence {
    if (this.closed) throw new Error("the model was unloaded");
    if (this.failure) throw this.failure;
    const seq = new Sequence(this.nextId++, request, listener, mode);
    this.enqueue(seq);
    this.poke();
    return seq;
  }

  /** Appends tokens to an idle `logits` sequence (evalLogits), to be run next. */
  extend(seq: Sequence, ids: number[]): void {
    seq.batchRun = { from: seq.tokens.length, to: seq.tokens.length + ids.length };
    seq.tokens.push(...ids);
    this.poke();
  }

  /** Ends a sequence now (reset of the evalLogits sequence, or its owner going away). */
  close(seq: Sequence): void {
    if (!seq.finished) this.finish(seq, "cancelled", { silent: true });
  }

  /** Wakes the loop: new work or a cancellation. */
  poke(): void {
    if (!this.loop && !this.closed) this.loop = this.run().catch((e) => this.fail(e instanceof Error ? e : new Error(String(e))));
    this.wake?.();
  }

  stats(): BatcherStats {
    return {
      running: this.running.filter((s) => s.mode.kind === "generate").length,
      waiting: this.waiting.length,
      kv: this.kv.stats(),
      preemptions: this.counts.preemptions,
      steps: this.counts.steps,
      stepTokens: this.counts.stepTokens,
      stepRows: this.counts.stepRows,
      stepSizes: Object.fromEntries(STEP_SIZE_LABELS.map((l, i) => [l, this.counts.stepSizes[i]])),
    };
  }

  /** Unloads: every sequence still running or waiting fails ("the model was unloaded"). */
  async dispose(): Promise<void> {
    this.closed = true;
    this.fail(new Error("the model was unloaded"));
    this.wake?.();
    await this.loop?.catch(() => undefined);
    for (const b of this.stagingPool) b.destroy();
  }

  private enqueue(seq: Sequence) {
    let at = this.waiting.length;
    while (at > 0 && Sequence.before(seq, this.waiting[at - 1])) at--;
    this.waiting.splice(at, 0, seq);
  }

  private async run(): Promise<void> {
    // Start on a microtask: a loop with nothing to run (its only sequence ended while planning,
    // e.g. a grammar allowing no token) would otherwise clear `this.loop` before poke() stores
    // it, leaving a finished loop that no later poke() replaces: the engine would stall.
    await Promise.resolve();
    while (!this.closed) {
      this.reap();
      this.admit();
      while (this.inFlight.length < PIPELINE_DEPTH && this.launchNext());
      const next = this.inFlight.shift();
      if (!next) {
        // idle: the next submit starts a new loop (cleared here, not later, so none is missed)
        if (this.running.length === 0 && this.waiting.length === 0) { this.loop = null; return; }
        await new Promise<void>((resolve) => { this.wake = resolve; });
        this.wake = null;
        continue;
      }
      await next.done;
      if (this.closed) break;
      this.collect(next);
    }
  }

  /** Sequences cancelled since the last step end here. */
  private reap() {
    for (const s of [...this.running, ...this.waiting]) if (s.cancelled && !s.finished) this.finish(s, "cancelled");
  }

  /**
   * Moves waiting sequences into free slots, most urgent first, each starting on the longest
   * cached prefix of its tokens. One whose tokens would not fit the free pages waits; an `asap`
   * one with no free slot preempts the least urgent `standard` sequence.
   */
  private admit() {
    for (let i = 0; i < this.waiting.length; ) {
      const seq = this.waiting[i];
      // rows of a preempted sequence still in flight come back first
      if (seq.pending > 0) { i++; continue; }
      if (this.freeSlots.length === 0) {
        const victim = seq.priority === "asap" ? this.leastUrgent((s) => s.priority === "standard") : undefined;
        if (!victim) break;
        this.preempt(victim);
        continue; // the victim was queued behind; look at the same index again
      }
      const ps = this.pageSize;
      const reusable = this.opts.prefixCache ? Math.floor((seq.tokens.length - 1) / ps) : 0;
      const borrowed = this.kv.borrowPrefix(seq.tokens, reusable, !!seq.request.cacheKey);
      const need = Math.ceil((seq.tokens.length + 1) / ps) - borrowed.pages.length;
      if (need > this.kv.available && this.running.length > 0) {
        for (const p of borrowed.pages) this.kv.release(p);
        break;
      }
      this.waiting.splice(i, 1);
      const slot = this.freeSlots.pop()!;
      seq.slot = slot;
      seq.pages = borrowed.pages;
      seq.published = borrowed.pages.length;
      seq.chainHash = borrowed.hash;
      seq.scheduled = borrowed.pages.length * ps;
      seq.batchRun = { from: seq.scheduled, to: seq.tokens.length };
      if (seq.startedAt === null) seq.cachedTokens = seq.scheduled;
      seq.startedAt ??= performance.now();
      if (borrowed.pages.length > 0) this.writePages(seq, 0);
      this.running.push(seq);
    }
  }

  /** The least urgent running sequence that `ok` accepts (preemption victim). */
  private leastUrgent(ok: (s: Sequence) => boolean, exclude?: Set<Sequence>): Sequence | undefined {
    let worst: Sequence | undefined;
    for (const s of this.running) {
      if (!ok(s) || exclude?.has(s) || s.mode.kind === "logits") continue;
      if (!worst || Sequence.before(worst, s)) worst = s;
    }
    return worst;
  }

  /** Takes a running sequence's slot and pages back; it waits to run again from its tokens so far. */
  private preempt(seq: Sequence) {
    this.publish(seq);
    this.dropPages(seq);
    this.counts.preemptions++;
    this.enqueue(seq);
  }

  private dropPages(seq: Sequence) {
    for (const p of seq.pages) this.kv.release(p);
    seq.pages = [];
    seq.published = 0;
    seq.chainHash = "";
    seq.scheduled = 0;
    if (seq.slot !== null) this.freeSlots.push(seq.slot);
    seq.slot = null;
    const at = this.running.indexOf(seq);
    if (at >= 0) this.running.splice(at, 1);
  }

  /** Indexes the sequence's pages that are full of known, submitted tokens. */
  private publish(seq: Sequence) {
    const ps = this.pageSize;
    const known = Math.min(seq.scheduled, seq.tokens.length);
    while ((seq.published + 1) * ps <= known && seq.published < seq.pages.length) {
      const i = seq.published;
      seq.chainHash = this.kv.publish(seq.pages[i], seq.chainHash, seq.tokens.slice(i * ps, (i + 1) * ps), !!seq.request.cacheKey);
      seq.published++;
    }
  }

  /** Page-table entries of `seq` from index `from` on, to the GPU (ordered before the next step). */
  private writePages(seq: Sequence, from: number) {
    const row = seq.slot! * this.opts.shape.pagesPerSeq;
    this.device.queue.writeBuffer(this.fwd.buffers.pageTable, 4 * (row + from), Uint32Array.from(seq.pages.slice(from)));
  }

  /**
   * Makes `seq` hold pages up to position `end` (exclusive), preempting less urgent sequences
   * (not in `committed`) when the pool is out. False when it cannot: then it has no more pages
   * than before.
   */
  private reserve(seq: Sequence, end: number, committed: Set<Sequence>): boolean {
    const ps = this.pageSize;
    const from = seq.pages.length;
    while (seq.pages.length * ps < end) {
      const page = this.kv.allocate();
      if (page !== null) { seq.pages.push(page); continue; }
      const victim = this.leastUrgent((s) => s !== seq && Sequence.before(seq, s), committed);
      if (!victim) {
        for (const p of seq.pages.splice(from)) this.kv.release(p);
        return false;
      }
      this.preempt(victim);
    }
    if (seq.pages.length > from) this.writePages(seq, from);
    return true;
  }

  /** Plans and submits the next step; false when no running sequence has work for one. */
  private launchNext(): boolean {
    const { nCtx, shape } = this.opts;
    const order = [...this.running].sort((a, b) => (Sequence.before(a, b) ? -1 : 1));
    const tokens: StepToken[] = [];
    const rows: SampleRow[] = [];
    const rowSeqs: Sequence[] = [];
    const logits: Launched["logits"] = [];
    const committed = new Set<Sequence>();
    let masked = false;
    let top = false;

    /** Adds `count` tokens of `seq` from its next position; samples after them when it reaches its end. */
    const take = (seq: Sequence, count: number, fed: boolean): boolean => {
      const start = seq.scheduled;
      const atEnd = fed || start + count === seq.tokens.length;
      const samples = atEnd && seq.wantsMore;
      // a grammar that allows no token ends the structure: nothing left to run (checked before
      // any of its tokens join the step, which must not write pages it gives back)
      if (samples && seq.matcher) {
        seq.matcher.fillNextTokenBitmask(this.maskScratch);
        if (!this.maskScratch.some((w) => w !== 0)) { this.finish(seq, "stop"); return false; }
      }
      if (!this.reserve(seq, start + count, committed)) return false;
      committed.add(seq);
      for (let i = 0; i < count; i++) {
        const pos = start + i;
        tokens.push({ id: fed ? 0 : seq.tokens[pos], pos, slot: seq.slot!, fed, inFour: !fed && seq.inFour(pos) });
      }
      seq.scheduled += count;
      const token = tokens.length - 1;
      if (atEnd && seq.mode.kind === "logits") {
        logits.push({ row: rows.length, seq, staging: this.device.createBuffer({ size: 4 * this.opts.nVocab, usage: MAP_READ | COPY_DST, label: "logits readback" }) });
        rows.push({ token, slot: seq.slot!, temperature: 0, topP: 1, draw: 0, wantLogprob: false, masked: false, topK: 0 });
      } else if (samples) {
        if (seq.matcher) this.device.queue.writeBuffer(this.fwd.buffers.mask, 4 * rows.length * this.fwd.maskWords, this.maskScratch);
        masked ||= !!seq.matcher;
        const { temperature, topP } = seq.request.sampling;
        // top_logprobs.wgsl takes the log-sum-exp from the partials that want_logprob computes
        top ||= seq.topK > 0;
        rows.push({ token, slot: seq.slot!, temperature, topP, draw: seq.draw(), wantLogprob: !!seq.request.logprobs, masked: !!seq.matcher, topK: seq.topK });
      } else {
        return true;
      }
      rowSeqs.push(seq);
      seq.pending++;
      return true;
    };

    // decode tokens first (one each), then prompt chunks with the budget left
    for (const seq of order) {
      if (tokens.length >= shape.maxTokens) break;
      if (seq.slot === null) continue; // preempted for a more urgent one in this plan
      const next = seq.nextInput(nCtx);
      if (next?.kind === "fed") take(seq, 1, true);
      else if (next?.kind === "literal" && next.count === 1) take(seq, 1, false);
    }
    for (const seq of order) {
      const room = shape.maxTokens - tokens.length;
      if (room <= 0) break;
      if (committed.has(seq) || seq.slot === null) continue;
      const next = seq.nextInput(nCtx);
      if (next?.kind === "literal") take(seq, Math.min(next.count, room), false);
    }
    if (tokens.length === 0) return false;

    const q = this.device.queue;
    this.writer.write(q, this.fwd.buffers.step, tokens, rows);
    const enc = this.device.createCommandEncoder();
    this.fwd.encode(enc, { tokens: tokens.length, rows: rows.length, masked, top });
    let staging: GPUBuffer | null = null;
    let topStaging: GPUBuffer | null = null;
    if (rows.length > 0) {
      staging = this.stagingPool.pop() ?? this.device.createBuffer({ size: 8 * shape.maxRows, usage: MAP_READ | COPY_DST, label: "sampled readback" });
      enc.copyBufferToBuffer(this.fwd.buffers.out, 0, staging, 0, 8 * rows.length);
      for (const l of logits) enc.copyBufferToBuffer(this.fwd.buffers.logits, 4 * l.row * this.opts.nVocab, l.staging, 0, 4 * this.opts.nVocab);
      if (top) {
        const bytes = 8 * MAX_TOP_LOGPROBS * rows.length;
        topStaging = this.device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST, label: "top logprobs readback" });
        enc.copyBufferToBuffer(this.fwd.buffers.top, 0, topStaging, 0, bytes);
      }
    }
    q.submit([enc.finish()]);
    for (const seq of committed) this.publish(seq);
    this.counts.steps++;
    this.counts.stepTokens += tokens.length;
    this.counts.stepRows += rows.length;
    this.counts.stepSizes[STEP_SIZE_BUCKETS.findIndex((b) => rows.length <= b)]++;
    const done = staging
      ? Promise.all([staging.mapAsync(MAP_READ, 0, 8 * rows.length), ...logits.map((l) => l.staging.mapAsync(MAP_READ)), topStaging?.mapAsync(MAP_READ)]).then(() => undefined)
      : q.onSubmittedWorkDone();
    this.inFlight.push({ rows: rowSeqs, logits, staging, top: topStaging, done });
    return true;
  }

  /** Reads a finished step's rows back into their sequences. */
  private collect(step: Launched) {
    const now = performance.now();
    let ids: Uint32Array | null = null;
    let lps: Float32Array | null = null;
    if (step.staging) {
      const raw = step.staging.getMappedRange(0, 8 * step.rows.length).slice(0);
      step.staging.unmap();
      this.stagingPool.push(step.staging);
      ids = new Uint32Array(raw);
      lps = new Float32Array(raw);
    }
    let top: { ids: Uint32Array; lps: Float32Array } | null = null;
    if (step.top) {
      const raw = step.top.getMappedRange().slice(0);
      step.top.unmap();
      step.top.destroy();
      top = { ids: new Uint32Array(raw), lps: new Float32Array(raw) };
    }
    for (const l of step.logits) {
      const values = new Float32Array(l.staging.getMappedRange().slice(0));
      l.staging.unmap();
      l.staging.destroy();
      l.seq.pending--;
      if (!l.seq.finished && l.seq.mode.kind === "logits") l.seq.mode.deliver(values);
    }
    step.rows.forEach((seq, r) => {
      if (seq.mode.kind === "logits") return;
      seq.pending--;
      if (seq.finished) return; // sampled ahead past its end
      const id = ids![2 * r];
      // the grammar sees every sampled token, a stop token included (it ends the structure)
      if (seq.matcher && !seq.matcher.acceptToken(id)) {
        return this.finish(seq, "stop", { error: new Error(`constrained decoding sampled token ${id}, which the grammar rejects (a masking bug)`) });
      }
      if (seq.cancelled) return this.finish(seq, "cancelled");
      if (seq.stopIds.has(id)) return this.finish(seq, "stop");
      seq.firstTokenAt ??= now;
      seq.tokens.push(id);
      seq.generated++;
      seq.listener.token(seq.request.logprobs ? { id, logprob: lps![2 * r + 1], ...(seq.topK > 0 && top ? { top: topOf(top, r, seq.topK) } : {}) } : { id });
      if (seq.slot !== null) this.publish(seq);
      if (seq.generated >= seq.request.maxTokens || seq.tokens.length > this.opts.nCtx) this.finish(seq, "length");
    });
  }

  /** Ends a sequence: its pages back to the pool (full ones stay cached), its slot freed. */
  private finish(seq: Sequence, reason: "stop" | "length" | "cancelled", o: { silent?: boolean; error?: Error } = {}) {
    if (seq.finished) return;
    seq.finished = true;
    if (seq.slot !== null) this.publish(seq);
    this.dropPages(seq);
    const w = this.waiting.indexOf(seq);
    if (w >= 0) this.waiting.splice(w, 1);
    if (o.silent) return;
    if (o.error) seq.listener.failed(o.error);
    else seq.listener.done({ finishReason: reason, timings: seq.timings(performance.now()) });
  }

  /** The device failed under a step (or the model is unloaded): every sequence fails with it, and so does new work. */
  private fail(err: Error) {
    this.failure = err;
    this.loop = null;
    for (const s of [...this.running, ...this.waiting]) {
      if (s.finished) continue;
      s.finished = true;
      this.dropPages(s);
      s.listener.failed(err);
    }
    this.waiting.length = 0;
  }
}

/** Row r's reported alternatives: up to k (id, logprob) pairs, most likely first. */
function topOf(top: { ids: Uint32Array; lps: Float32Array }, r: number, k: number): { id: number; logprob: number }[] {
  const out: { id: number; logprob: number }[] = [];
  for (let j = 0; j < k; j++) {
    const at = 2 * (r * MAX_TOP_LOGPROBS + j);
    if (top.ids[at] === 0xFFFFFFFF) break;
    out.push({ id: top.ids[at], logprob: top.lps[at + 1] });
  }
  return out;
}
