// Everything a route needs, built once by the server and handed to every surface module.

import type { ResponseStore } from "../store/responses.ts";
import type { Scheduler } from "../scheduler/queue.ts";
import type { ModelRegistry } from "../scheduler/models.ts";
import type { Metrics } from "./metrics.ts";
import type { AuthConfig } from "./auth.ts";
import type { Engine } from "../scheduler/engine.ts";
import type { IdempotencyStore } from "../store/idempotency.ts";
import type { BackgroundRunner } from "../scheduler/background.ts";
import type { BatchStore } from "../store/batches.ts";
import type { BatchRunner } from "../scheduler/batches.ts";

export interface ApiLimits {
  /** Largest accepted request body on the inference routes, in bytes (default 32 MB). */
  maxBodyBytes: number;
  /** Largest accepted body on POST /v1/batches (default 256 MB). */
  maxBatchBodyBytes: number;
}

export const DEFAULT_LIMITS: ApiLimits = { maxBodyBytes: 32 * 1024 * 1024, maxBatchBodyBytes: 256 * 1024 * 1024 };

/** The body limit of a path. */
export function bodyLimit(limits: ApiLimits, path: string): number {
  return path === "/v1/batches" ? limits.maxBatchBodyBytes : limits.maxBodyBytes;
}

export interface AppContext {
  engine: Engine;
  store: ResponseStore;
  scheduler: Scheduler;
  /** Background responses and work resumed after a restart. */
  background: BackgroundRunner;
  batches: BatchStore;
  /** Feeds batch items to the scheduler; woken when a batch is accepted. */
  batchRunner: BatchRunner;
  idempotency: IdempotencyStore;
  models: ModelRegistry;
  metrics: Metrics;
  auth: AuthConfig;
  limits: ApiLimits;
}
