// Prometheus metrics (prom-client), one registry per server so tests can run several apps in
// one process. The scheduler reports through SchedulerObserver; the HTTP layer counts requests.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { SchedulerObserver } from "../scheduler/queue.ts";
import type { AttemptOutcome, WebhookObserver } from "../webhooks/dispatcher.ts";
import type { GenerationResult } from "../generation.ts";
import type { EngineStats } from "../engine/protocol.ts";

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
  private readonly kvTokens = new Gauge({
    name: "valar_kv_cache_tokens", help: "KV-cache positions holding a model's current (or last) sequence.",
    labelNames: ["model"] as const, registers: [this.registry],
  });
  private readonly kvUse = new Gauge({
    name: "valar_kv_cache_usage_ratio", help: "KV-cache positions in use over the model's context length.",
    labelNames: ["model"] as const, registers: [this.registry],
  });
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

  /** KV-cache gauges from the engine's stats, read when /metrics is scraped. */
  kvCache(stats: EngineStats): void {
    for (const m of stats.models) {
      this.kvTokens.set({ model: m.id }, m.kvTokens);
      this.kvUse.set({ model: m.id }, m.nCtx > 0 ? m.kvTokens / m.nCtx : 0);
    }
  }

  webhookAttempt(outcome: AttemptOutcome): void {
    this.webhooks.inc({ outcome });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
