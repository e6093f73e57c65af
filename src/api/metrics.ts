// Prometheus metrics (prom-client), one registry per server so tests can run several apps in
// one process. The scheduler reports through SchedulerObserver; the HTTP layer counts requests.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { SchedulerObserver } from "../scheduler/queue.ts";
import type { AttemptOutcome, WebhookObserver } from "../webhooks/dispatcher.ts";
import type { GenerationResult } from "../generation.ts";
import type { EngineStats } from "../engine/protocol.ts";
import type { BatchStore } from "../store/batches.ts";

export class Metrics implements SchedulerObserver, WebhookObserver {
  readonly registry = new Registry();

  private readonly requests = new Counter({
    name: "valar_http_requests_total", help: "HTTP requests by route and status.",
    labelNames: ["method", "route", "status"] as const, registers: [this.registry],
  });
  private readonly tokensIn = new Counter({
    name: "valar_prompt_tokens_total", help: "Prompt tokens processed.", labelNames: ["model"] as const, registers: [this.registry],
  });
  private readonly tokensOut = new Counter({
    name: "valar_output_tokens_total", help: "Output tokens generated.", labelNames: ["model"] as const, registers: [this.registry],
  });
  private readonly ttft = new Histogram({
    name: "valar_time_to_first_token_seconds", help: "Time from the start of a generation to its first output token.",
    labelNames: ["model"] as const, buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry],
  });
  private readonly tps = new Histogram({
    name: "valar_decode_tokens_per_second", help: "Decode speed of each finished generation.",
    labelNames: ["model"] as const, buckets: [1, 5, 10, 25, 50, 100, 200, 400, 800, 1600], registers: [this.registry],
  });
  private readonly queue = new Gauge({
    name: "valar_queue_depth", help: "Generations waiting or running, per model and completion window.",
    labelNames: ["model", "window"] as const, registers: [this.registry],
  });
  private readonly webhooks = new Counter({
    name: "valar_webhook_attempts_total", help: "Completion-webhook delivery attempts by outcome (delivered, retry, failed).",
    labelNames: ["outcome"] as const, registers: [this.registry],
  });
  private readonly waitTime = new Histogram({
    name: "valar_queue_wait_seconds", help: "Time a generation waited in the scheduler's queue before the engine took it, per model and completion window.",
    labelNames: ["model", "window"] as const, buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 900], registers: [this.registry],
  });
  private readonly running = new Gauge({
    name: "valar_running_sequences", help: "Sequences the engine is running (in every step), per model.",
    labelNames: ["model"] as const, registers: [this.registry],
  });
  private readonly engineWaiting = new Gauge({
    name: "valar_engine_waiting_sequences", help: "Sequences sent to the engine waiting for a slot or KV pages (preempted ones included), per model.",
    labelNames: ["model"] as const, registers: [this.registry],
  });
  private readonly kvPages = new Gauge({
    name: "valar_kv_pages", help: "KV-cache pages by state: used (held by sequences), cached (prefix cache, evictable), free.",
    labelNames: ["model", "state"] as const, registers: [this.registry],
  });
  private readonly kvUse = new Gauge({
    name: "valar_kv_cache_usage_ratio", help: "KV-cache pages held by running sequences over the pool's pages.",
    labelNames: ["model"] as const, registers: [this.registry],
  });
  private readonly deviceBytes = new Gauge({
    name: "valar_engine_device_bytes", help: "Device memory a model holds: weights, KV pools, step buffers.",
    labelNames: ["model"] as const, registers: [this.registry],
  });
  private readonly prefixHits = new Counter({
    name: "valar_prefix_cache_hit_tokens_total", help: "Prompt tokens whose KV came from the prefix cache instead of being computed.",
    labelNames: ["model"] as const, registers: [this.registry],
  });
  private readonly preemptions = new Counter({
    name: "valar_preemptions_total", help: "Running sequences preempted (KV pool full, or a slot for asap work); they run again later.",
    labelNames: ["model"] as const, registers: [this.registry],
  });
  private readonly steps = new Counter({
    name: "valar_engine_steps_total", help: "Engine steps (forward passes) by how many sequences sampled a token in them (the batch size).",
    labelNames: ["model", "sequences"] as const, registers: [this.registry],
  });
  private readonly stepTokens = new Counter({
    name: "valar_engine_step_tokens_total", help: "Tokens run through engine steps (decode tokens and prompt chunks).",
    labelNames: ["model"] as const, registers: [this.registry],
  });
  /** The engine's cumulative counts at the last scrape, per model, to advance the counters by. */
  private readonly lastSeen = new Map<string, { hits: number; preemptions: number; stepTokens: number; stepSizes: Record<string, number> }>();
  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "valar_process_" });
  }

  http(method: string, route: string, status: number): void {
    this.requests.inc({ method, route, status: String(status) });
  }

  queueDepth(model: string, window: string, depth: number): void {
    this.queue.set({ model, window }, depth);
  }

  finished(model: string, result: GenerationResult): void {
    this.tokensIn.inc({ model }, result.usage.inputTokens);
    this.tokensOut.inc({ model }, result.usage.outputTokens);
    if (result.timeToFirstTokenMs !== null) this.ttft.observe({ model }, result.timeToFirstTokenMs / 1000);
    if (result.usage.outputTokens > 1 && result.decodeMs > 0) {
      this.tps.observe({ model }, result.usage.outputTokens / (result.decodeMs / 1000));
    }
  }

  queueWait(model: string, window: string, seconds: number): void {
    this.waitTime.observe({ model, window }, seconds);
  }

  /** The engine's gauges and counters from its stats, read when /metrics is scraped. */
  engine(stats: EngineStats): void {
    for (const m of stats.models) {
      this.running.set({ model: m.id }, m.running);
      this.engineWaiting.set({ model: m.id }, m.waiting);
      for (const state of ["used", "cached", "free"] as const) this.kvPages.set({ model: m.id, state }, m.kv[state]);
      this.kvUse.set({ model: m.id }, m.kv.pages > 0 ? m.kv.used / m.kv.pages : 0);
      this.deviceBytes.set({ model: m.id }, m.deviceBytes);
      const last = this.lastSeen.get(m.id) ?? { hits: 0, preemptions: 0, stepTokens: 0, stepSizes: {} };
      this.prefixHits.inc({ model: m.id }, Math.max(0, m.kv.hitTokens - last.hits));
      this.preemptions.inc({ model: m.id }, Math.max(0, m.preemptions - last.preemptions));
      this.stepTokens.inc({ model: m.id }, Math.max(0, m.stepTokens - last.stepTokens));
      for (const [sequences, n] of Object.entries(m.stepSizes)) this.steps.inc({ model: m.id, sequences }, Math.max(0, n - (last.stepSizes[sequences] ?? 0)));
      this.lastSeen.set(m.id, { hits: m.kv.hitTokens, preemptions: m.preemptions, stepTokens: m.stepTokens, stepSizes: { ...m.stepSizes } });
    }
  }

  /** Batch gauges, read from the store when /metrics is scraped. */
  watchBatches(batches: BatchStore): void {
    const registers = [this.registry];
    new Gauge({
      name: "valar_batches", help: "Batches by status (queued, in_progress, cancelling, completed, cancelled).",
      labelNames: ["status"] as const, registers,
      collect() {
        for (const [status, n] of Object.entries(batches.totals().batches)) this.set({ status }, n);
      },
    });
    new Gauge({
      name: "valar_batch_items", help: "Batch items by status (queued, in_progress, and the terminal ones).",
      labelNames: ["status"] as const, registers,
      collect() {
        for (const [status, n] of Object.entries(batches.totals().items)) this.set({ status }, n);
      },
    });
  }

  webhookAttempt(outcome: AttemptOutcome): void {
    this.webhooks.inc({ outcome });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
