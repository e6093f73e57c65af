// startServer: opens the store, starts the engine, loads the models, and serves the API.
// Used by the CLI's `serve` and by the end-to-end tests (port 0 picks a free port).

import type { Server } from "bun";
import type { ServeConfig } from "./config.ts";
import { isLoopbackHost } from "./config.ts";
import { openDb, closeDb } from "./store/db.ts";
import { DEFAULT_ORG, ensureOrganization, hasActiveKeys } from "./store/keys.ts";
import { ResponseStore } from "./store/responses.ts";
import { DEFAULT_IDEMPOTENCY_TTL_MS, IdempotencyStore } from "./store/idempotency.ts";
import { DeliveryStore } from "./store/deliveries.ts";
import { Scheduler } from "./scheduler/queue.ts";
import { BackgroundRunner } from "./scheduler/background.ts";
import { DEFAULT_WEBHOOK_OPTIONS, WebhookDispatcher, wireWebhooks, type WebhookOptions } from "./webhooks/index.ts";
import { ModelRegistry } from "./scheduler/models.ts";
import type { Engine } from "./scheduler/engine.ts";
import type { CompletionWindow } from "./generation.ts";
import { EngineClient } from "./engine/client.ts";
import { Metrics } from "./api/metrics.ts";
import { createApp, instrumentedFetch } from "./api/app.ts";
import { renderResponse } from "./api/responses.ts";
import { DEFAULT_LIMITS, type AppContext } from "./api/context.ts";

export interface StartOptions extends Pick<ServeConfig, "models" | "host" | "port" | "db" | "apiKey"> {
  /** Request body limit in bytes on the inference routes (default 32 MB). */
  maxBodyBytes?: number;
  /** Completion windows per model id (default: both; env VALAR_MODEL_WINDOWS="ID=asap;ID2=asap,standard"). */
  windows?: Record<string, CompletionWindow[]>;
  /** Largest context to allocate per model (default: the model's own). */
  maxContext?: number;
  /** How long an idempotency reservation lasts (default 24 h; env VALAR_IDEMPOTENCY_TTL, seconds). */
  idempotencyTtlMs?: number;
  /**
   * Completion-webhook delivery (defaults: 30 s per attempt, retries after 1 s, 5 s, 25 s;
   * env VALAR_WEBHOOK_TIMEOUT_MS, VALAR_WEBHOOK_BACKOFF_MS as a comma-separated list).
   */
  webhooks?: Partial<WebhookOptions>;
}

/** Settings StartOptions leaves unset, from the environment (the CLI has no flags for them yet). */
function fromEnv(config: StartOptions, env: Record<string, string | undefined> = process.env) {
  const number = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === "") return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new StartError(`${name} must be a non-negative number, got '${raw}'`);
    return n;
  };
  const ttlS = number("VALAR_IDEMPOTENCY_TTL");
  const timeoutMs = number("VALAR_WEBHOOK_TIMEOUT_MS");
  const backoffRaw = env.VALAR_WEBHOOK_BACKOFF_MS;
  const backoffMs = backoffRaw ? backoffRaw.split(",").map((v) => {
    const n = Number(v.trim());
    if (!Number.isFinite(n) || n < 0) throw new StartError(`VALAR_WEBHOOK_BACKOFF_MS must be a comma-separated list of milliseconds, got '${backoffRaw}'`);
    return n;
  }) : undefined;
  const webhooks: WebhookOptions = {
    ...DEFAULT_WEBHOOK_OPTIONS,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(backoffMs ? { backoffMs } : {}),
    ...config.webhooks,
  };
  return {
    windows: config.windows ?? parseWindows(env.VALAR_MODEL_WINDOWS),
    idempotencyTtlMs: config.idempotencyTtlMs ?? (ttlS !== undefined ? ttlS * 1000 : DEFAULT_IDEMPOTENCY_TTL_MS),
    webhooks,
  };
}

const WINDOWS: readonly CompletionWindow[] = ["asap", "standard"];

/** `VALAR_MODEL_WINDOWS="ID=asap;OTHER=asap,standard"`: the windows each named model offers. */
export function parseWindows(raw: string | undefined): Record<string, CompletionWindow[]> | undefined {
  if (!raw) return undefined;
  const out: Record<string, CompletionWindow[]> = {};
  for (const entry of raw.split(";").map((e) => e.trim()).filter(Boolean)) {
    const eq = entry.lastIndexOf("=");
    const id = entry.slice(0, eq).trim();
    const windows = entry.slice(eq + 1).split(",").map((w) => w.trim());
    if (eq <= 0 || windows.some((w) => !(WINDOWS as readonly string[]).includes(w))) {
      throw new StartError(`VALAR_MODEL_WINDOWS: '${entry}' is not MODEL_ID=WINDOW[,WINDOW] with windows from ${WINDOWS.join(", ")}`);
    }
    out[id] = [...new Set(windows)] as CompletionWindow[];
  }
  return out;
}

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
  const settings = fromEnv(config);
  const db = openDb(config.db);
  ensureOrganization(db, DEFAULT_ORG.name);
  if (!isLoopbackHost(config.host) && !config.apiKey && !hasActiveKeys(db)) {
    closeDb(db);
    throw new StartError(`refusing to listen on ${config.host} without authentication: set VALAR_API_KEY or create a key with \`valar keys create --org NAME\``);
  }
  let engine: Engine | undefined;
  let stopWork = async () => {};
  try {
    const started: Engine = await EngineClient.start();
    engine = started;
    const store = new ResponseStore(db);
    const metrics = new Metrics();
    const idempotency = new IdempotencyStore(db, settings.idempotencyTtlMs);
    const deliveries = new DeliveryStore(db);
    const dispatcher = new WebhookDispatcher(deliveries, (id) => {
      const rec = store.get(id);
      // The same serialization as the GET route's JSON answer, so the bodies are byte-equal.
      return rec ? JSON.stringify(renderResponse(rec)) : null;
    }, settings.webhooks, metrics);
    wireWebhooks(store, deliveries, dispatcher);
    const scheduler = new Scheduler(started, store, metrics);
    const models = new ModelRegistry(started);
    for (const m of config.models) {
      await models.load({ id: m.id, ref: m.ref, windows: settings.windows?.[m.id], maxContext: config.maxContext });
    }
    const background = new BackgroundRunner(scheduler, store, models);
    const ctx: AppContext = {
      engine: started, store, scheduler, background, idempotency, models, metrics,
      auth: { apiKey: config.apiKey ?? null, db },
      limits: { maxBodyBytes: config.maxBodyBytes ?? DEFAULT_LIMITS.maxBodyBytes },
    };
    const sweeper = setInterval(() => idempotency.sweep(), SWEEP_INTERVAL_MS);
    sweeper.unref?.();
    stopWork = async () => {
      clearInterval(sweeper);
      // Interrupted work goes back to `queued` (not cancelled) for the next start.
      await scheduler.stop();
      await dispatcher.stop();
    };
    // Work a previous process accepted and did not finish runs first, in its original order.
    background.recover();
    dispatcher.start();
    idempotency.sweep();
    const app = createApp(ctx);
    const server: Server<undefined> = Bun.serve({
      hostname: config.host,
      port: config.port,
      fetch: instrumentedFetch(app, ctx),
      // Bodies over the limit are answered with a 413 envelope by the app; Bun's own cut-off sits
      // above it so it only stops what the app would never read.
      maxRequestBodySize: ctx.limits.maxBodyBytes + 1024 * 1024,
      // Generations can be long and a sync request is silent until done: no idle cut-off.
      idleTimeout: 0,
    });
    const port = server.port!;
    const shown = config.host.includes(":") ? `[${config.host}]` : config.host;
    const running: RunningServer = {
      url: `http://${shown}:${port}`,
      port,
      ctx,
      async stop() {
        await stopWork();
        await server.stop(true);
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
