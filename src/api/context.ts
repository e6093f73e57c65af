// Everything a route needs, built once by the server and handed to every surface module.

import type { ResponseStore } from "../store/responses.ts";
import type { Scheduler } from "../scheduler/queue.ts";
import type { ModelRegistry } from "../scheduler/models.ts";
import type { Metrics } from "./metrics.ts";
import type { AuthConfig } from "./auth.ts";
import type { Engine } from "../scheduler/engine.ts";
import type { IdempotencyStore } from "../store/idempotency.ts";
import type { BackgroundRunner } from "../scheduler/background.ts";

export interface ApiLimits {
  /** Largest accepted request body on the inference routes, in bytes (default 32 MB). */
  maxBodyBytes: number;
}

export const DEFAULT_LIMITS: ApiLimits = { maxBodyBytes: 32 * 1024 * 1024 };

export interface AppContext {
  engine: Engine;
  store: ResponseStore;
  scheduler: Scheduler;
  /** Background responses and work resumed after a restart. */
  background: BackgroundRunner;
  idempotency: IdempotencyStore;
  models: ModelRegistry;
  metrics: Metrics;
  auth: AuthConfig;
  limits: ApiLimits;
}
