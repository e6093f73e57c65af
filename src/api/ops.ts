// Operations: /health (the process answers), /ready (a model is loaded and the engine answers),
// /metrics (Prometheus text). Not under /v1 and not authenticated, as probes and scrapers expect.

import { Elysia, t, type Static } from "elysia";
import type { AppContext } from "./context.ts";
import { ApiError } from "./errors.ts";
import type { EngineStats } from "../engine/protocol.ts";
import { Int, Shape } from "./common.ts";
import { documented } from "./openapi.ts";

export const HealthObject = Shape("Health", { status: t.Literal("ok") });
export const ReadyObject = Shape("Ready", { status: t.Literal("ready"), models: t.Array(t.String()), queue_depth: Int({ minimum: 0 }) });

const ENGINE_PROBE_MS = 5000;

async function engineAnswers(ctx: AppContext): Promise<EngineStats> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ENGINE_PROBE_MS} ms`)), ENGINE_PROBE_MS);
  });
  try {
    return await Promise.race([ctx.engine.stats(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function opsRoutes(ctx: AppContext) {
  return new Elysia({ name: "ops" })
    .get("/health", (): Static<typeof HealthObject> => ({ status: "ok" }), { detail: documented({ 200: HealthObject }, "The process answers", { public: true }) })
    .get("/ready", async () => {
      const models = ctx.models.list().map((m) => m.id);
      if (models.length === 0) throw new ApiError("overloaded_error", "Not ready: no model is loaded.", { code: "not_ready" });
      try {
        await engineAnswers(ctx);
      } catch (err) {
        throw new ApiError("overloaded_error", `Not ready: the engine does not answer (${(err as Error).message}).`, { code: "not_ready" });
      }
      const ready: Static<typeof ReadyObject> = { status: "ready", models, queue_depth: ctx.scheduler.totalDepth() };
      return ready;
    }, { detail: documented({ 200: ReadyObject }, "A model is loaded and the engine answers (503 otherwise)", { public: true }) })
    .get("/metrics", async () => {
      // An engine that does not answer must not take the scrape down with it: KV gauges keep their last values.
      await engineAnswers(ctx).then((stats) => ctx.metrics.engine(stats), () => {});
      return new Response(await ctx.metrics.text(), { headers: { "content-type": ctx.metrics.registry.contentType } });
    }, { detail: documented({ 200: { "text/plain": t.String({ description: "Prometheus exposition format" }) } }, "Prometheus metrics", { public: true }) });
}
