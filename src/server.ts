// startServer: opens the store, starts the engine, loads the models, and serves the API.
// Used by the CLI's `serve` and by the end-to-end tests (port 0 picks a free port).

import type { Server } from "bun";
import type { ServeConfig } from "./config.ts";
import { isLoopbackHost } from "./config.ts";
import { openDb, closeDb } from "./store/db.ts";
import { DEFAULT_ORG, ensureOrganization, hasActiveKeys } from "./store/keys.ts";
import { ResponseStore } from "./store/responses.ts";
import { Scheduler } from "./scheduler/queue.ts";
import { ModelRegistry } from "./scheduler/models.ts";
import type { Engine } from "./scheduler/engine.ts";
import type { CompletionWindow } from "./generation.ts";
import { EngineClient } from "./engine/client.ts";
import { Metrics } from "./api/metrics.ts";
import { createApp, instrumentedFetch } from "./api/app.ts";
import { DEFAULT_LIMITS, type AppContext } from "./api/context.ts";

export interface StartOptions extends Pick<ServeConfig, "models" | "host" | "port" | "db" | "apiKey"> {
  /** Request body limit in bytes on the inference routes (default 32 MB). */
  maxBodyBytes?: number;
  /** Completion windows per model id (default: both). */
  windows?: Record<string, CompletionWindow[]>;
  /** Largest context to allocate per model (default: the model's own). */
  maxContext?: number;
}

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
  const db = openDb(config.db);
  ensureOrganization(db, DEFAULT_ORG.name);
  if (!isLoopbackHost(config.host) && !config.apiKey && !hasActiveKeys(db)) {
    closeDb(db);
    throw new StartError(`refusing to listen on ${config.host} without authentication: set VALAR_API_KEY or create a key with \`valar keys create --org NAME\``);
  }
  let engine: Engine | undefined;
  try {
    const started: Engine = await EngineClient.start();
    engine = started;
    const store = new ResponseStore(db);
    const metrics = new Metrics();
    const scheduler = new Scheduler(started, store, metrics);
    const models = new ModelRegistry(started);
    for (const m of config.models) {
      await models.load({ id: m.id, ref: m.ref, windows: config.windows?.[m.id], maxContext: config.maxContext });
    }
    const ctx: AppContext = {
      engine: started, store, scheduler, models, metrics,
      auth: { apiKey: config.apiKey ?? null, db },
      limits: { maxBodyBytes: config.maxBodyBytes ?? DEFAULT_LIMITS.maxBodyBytes },
    };
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
        await server.stop(true);
        await started.close();
        closeDb(db);
      },
    };
    return running;
  } catch (err) {
    await engine?.close().catch(() => undefined);
    closeDb(db);
    throw err;
  }
}
