// startServer: opens the store, starts the engine, loads the models, and serves the API.
// Used by the CLI's `serve` and by the end-to-end tests (port 0 picks a free port).

import type { ServeConfig } from "./config.ts";
import { exposureRefusal } from "./config.ts";
import { host } from "./hosts/index.ts";
import { openDb, closeDb } from "./store/db.ts";
import { DEFAULT_ORG, ensureOrganization, hasActiveKeys } from "./store/keys.ts";
import { ResponseStore } from "./store/responses.ts";
import { DEFAULT_IDEMPOTENCY_TTL_MS, IdempotencyStore } from "./store/idempotency.ts";
import { DeliveryStore } from "./store/deliveries.ts";
import { Scheduler, type SchedulerSettings } from "./scheduler/queue.ts";
import type { LoadSettings } from "./engine/protocol.ts";
import { BackgroundRunner } from "./scheduler/background.ts";
import { DEFAULT_WEBHOOK_OPTIONS, WebhookDispatcher, wireBatchWebhooks, wireWebhooks, type WebhookOptions } from "./webhooks/index.ts";
import { BatchStore } from "./store/batches.ts";
import { BatchRunner } from "./scheduler/batches.ts";
import { renderBatchStatus } from "./api/batches.ts";
import { ID_PREFIX } from "./store/ids.ts";
import { ModelRegistry } from "./scheduler/models.ts";
import type { Engine } from "./scheduler/engine.ts";
import type { CompletionWindow } from "./generation.ts";
import { EnginePool, type ReplicaCount } from "./engine/pool.ts";
import { Metrics } from "./api/metrics.ts";
import { createApp, instrumentedFetch } from "./api/app.ts";
import { renderResponse } from "./api/responses.ts";
import { DEFAULT_LIMITS, type AppContext } from "./api/context.ts";

export interface StartOptions extends Pick<ServeConfig, "models" | "host" | "port" | "db" | "apiKey"> {
  /** Told, while a model loads, its file's tensor bytes on the device so far (`serve` draws a bar). */
  onLoadProgress?: (modelId: string, done: number, total: number) => void;
  /** Request body limit in bytes on the inference routes (default 32 MB). */
  maxBodyBytes?: number;
  /** Request body limit in bytes on POST /v1/batches (default 256 MB). */
  maxBatchBodyBytes?: number;
  /** Completion windows per model id (default: both; `serve`: --model-windows / VALAR_MODEL_WINDOWS). */
  windows?: Record<string, CompletionWindow[]>;
  /** Largest context to allocate per model (default: the model's own, up to 4096). */
  maxContext?: number;
  /** Context length per model id (beats `maxContext`; `serve`: --context ID=N). */
  contexts?: Record<string, number>;
  /** Batching settings for every model: sequences at once, tokens per step, KV pool size. */
  batching?: Pick<LoadSettings, "maxRunning" | "maxStepTokens" | "kvCacheTokens" | "prefixCache">;
  /** Engine replicas (workers with a device and a copy of every model each; default 1; `serve`: --replicas, default auto). */
  replicas?: ReplicaCount;
  /** Completion-window scheduling and admission bounds (src/scheduler/queue.ts defaults). */
  scheduling?: Partial<SchedulerSettings>;
  /** How long an idempotency reservation lasts (default 24 h; `serve`: --idempotency-ttl / VALAR_IDEMPOTENCY_TTL, seconds). */
  idempotencyTtlMs?: number;
  /**
   * Completion-webhook delivery (defaults: 30 s per attempt, retries after 1 s, 5 s, 25 s;
   * `serve`: VALAR_WEBHOOK_TIMEOUT_MS, VALAR_WEBHOOK_BACKOFF_MS).
   */
  webhooks?: Partial<WebhookOptions>;
}

/** Defaults for what StartOptions leaves unset (`serve` fills them from its settings table, src/config.ts). */
function withDefaults(config: StartOptions) {
  return {
    windows: config.windows,
    idempotencyTtlMs: config.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS,
    webhooks: { ...DEFAULT_WEBHOOK_OPTIONS, ...config.webhooks } satisfies WebhookOptions,
  };
}

// Parsed with the other serve settings; re-exported for callers that build StartOptions themselves.
export { parseWindows } from "./config.ts";

/** How often expired idempotency reservations are swept away. */
const SWEEP_INTERVAL_MS = 60 * 60 * 1000;

export interface RunningServer {
  url: string;
  port: number;
  ctx: AppContext;
  stop(): Promise<void>;
}

export class StartError extends Error {
  override name = "StartError";
}

export async function startServer(config: StartOptions): Promise<RunningServer> {
  if (config.models.length === 0) throw new StartError("no model to serve: name one with --model");
  const settings = withDefaults(config);
  const db = openDb(config.db);
  ensureOrganization(db, DEFAULT_ORG.name);
  const refusal = exposureRefusal(config.host, config.apiKey, () => hasActiveKeys(db));
  if (refusal) {
    closeDb(db);
    throw new StartError(refusal);
  }
  let engine: Engine | undefined;
  let stopWork = async () => {};
  try {
    const started: Engine = await EnginePool.start(config.replicas ?? 1);
    engine = started;
    const store = new ResponseStore(db);
    const metrics = new Metrics();
    const idempotency = new IdempotencyStore(db, settings.idempotencyTtlMs);
    const deliveries = new DeliveryStore(db);
    const batches = new BatchStore(db, store);
    // The same serialization as the GET routes' JSON answers, so the bodies are byte-equal.
    const renderDelivered = (id: string) => {
      if (id.startsWith(ID_PREFIX.batch)) {
        const batch = batches.get(id);
        return batch ? JSON.stringify(renderBatchStatus({ batches }, batch)) : null;
      }
      const rec = store.get(id);
      return rec ? JSON.stringify(renderResponse(rec)) : null;
    };
    const dispatcher = new WebhookDispatcher(deliveries, renderDelivered, settings.webhooks, metrics);
    wireWebhooks(store, deliveries, dispatcher);
    wireBatchWebhooks(batches, deliveries, dispatcher);
    const scheduler = new Scheduler(started, store, metrics, config.scheduling);
    const models = new ModelRegistry(started);
    for (const m of config.models) {
      const maxContext = config.contexts?.[m.id] ?? config.maxContext;
      const progress = config.onLoadProgress && ((done: number, total: number) => config.onLoadProgress!(m.id, done, total));
      const served = await models.load({ id: m.id, ref: m.ref, windows: settings.windows?.[m.id], engine: { ...config.batching, ...(maxContext ? { maxContext } : {}) } }, progress);
      scheduler.setCapacity(m.id, served.maxRunning);
    }
    const background = new BackgroundRunner(scheduler, store, models);
    const batchRunner = new BatchRunner(batches, store, models, background);
    metrics.watchBatches(batches);
    const ctx: AppContext = {
      engine: started, store, scheduler, background, batches, batchRunner, idempotency, models, metrics,
      auth: { apiKey: config.apiKey ?? null, db },
      limits: {
        maxBodyBytes: config.maxBodyBytes ?? DEFAULT_LIMITS.maxBodyBytes,
        maxBatchBodyBytes: config.maxBatchBodyBytes ?? DEFAULT_LIMITS.maxBatchBodyBytes,
      },
    };
    const sweeper = setInterval(() => idempotency.sweep(), SWEEP_INTERVAL_MS);
    sweeper.unref?.();
    stopWork = async () => {
      clearInterval(sweeper);
      // Interrupted work goes back to `queued` (not cancelled) for the next start.
      batchRunner.stop();
      await scheduler.stop();
      await dispatcher.stop();
      models.close();
    };
    // Work a previous process accepted and did not finish runs first, in its original order.
    await background.recover();
    batchRunner.start();
    dispatcher.start();
    idempotency.sweep();
    const app = createApp(ctx);
    const server = await host.listen({
      hostname: config.host,
      port: config.port,
      fetch: instrumentedFetch(app, ctx),
      // Bodies over the limit are answered with a 413 envelope by the app (by their length before
      // they are read, or once a chunked one passes it); the listener's own cut-off, which answers
      // without the envelope, sits far above so it only stops what the app would never read.
      maxRequestBodySize: 4 * Math.max(ctx.limits.maxBodyBytes, ctx.limits.maxBatchBodyBytes),
    });
    const port = server.port;
    const shown = config.host.includes(":") ? `[${config.host}]` : config.host;
    const running: RunningServer = {
      url: `http://${shown}:${port}`,
      port,
      ctx,
      async stop() {
        await stopWork();
        await server.stop();
        await started.close();
        closeDb(db);
      },
    };
    return running;
  } catch (err) {
    await stopWork().catch(() => undefined);
    await engine?.close().catch(() => undefined);
    closeDb(db);
    throw err;
  }
}
