// The path every surface takes once it has a Generation: find the model, build the prompt,
// store the record (and the idempotency reservation, in one transaction), queue it, wait for
// the result. Surface-neutral: adapters call this and render what comes back.
//
// Everything that can reject a request (schema, unsupported parameters, model, metadata,
// window, prompt length, idempotency header) runs before `accept` writes anything, so a 4xx
// leaves no row behind and an idempotency key stays free.

import type { AppContext } from "./context.ts";
import type { Generation, GenerationResult, OnDelta } from "../generation.ts";
import type { Surface } from "./unsupported.ts";
import type { Principal } from "../store/keys.ts";
import { isTerminal, type ResponseRecord } from "../store/responses.ts";
import { IdempotencyMismatch, fingerprint } from "../store/idempotency.ts";
import { PromptError, PromptTooLong, type ServedModel } from "../scheduler/models.ts";
import { GenerationFailed, QueueFull, SchedulerStopped, type PreparedGeneration } from "../scheduler/queue.ts";
import { ApiError, invalidRequest, unknownModel } from "./errors.ts";
import { newId } from "../store/ids.ts";

export function requireModel(ctx: AppContext, id: string): ServedModel {
  const model = ctx.models.get(id);
  if (!model) throw unknownModel(id);
  return model;
}

export type Accepted =
  /** A new record, queued: run `job`. */
  | { replayed: false; record: ResponseRecord; job: PreparedGeneration }
  /** The idempotency key already holds this record: no inference, render its current state. */
  | { replayed: true; record: ResponseRecord };

export interface AcceptOptions {
  background?: boolean;
  /** From the surface's idempotency header (already checked). */
  idempotencyKey?: string | null;
}

/** Tokenizes and stores the request; after this the request is accepted (and recorded). */
export async function accept(
  ctx: AppContext, surface: Surface, principal: Principal, request: unknown, model: ServedModel, generation: Generation,
  opts: AcceptOptions = {},
): Promise<Accepted> {
  let prepared: { promptIds: number[]; maxTokens: number };
  try {
    prepared = await ctx.models.prepare(model, generation);
  } catch (err) {
    if (err instanceof PromptTooLong) throw invalidRequest(err.message, null, "context_length_exceeded");
    if (err instanceof PromptError) throw invalidRequest(err.message, null, "invalid_prompt");
    throw err;
  }
  const owner = principal.apiKeyId ?? principal.organizationId;
  // A full queue refuses a sync request here, before anything is stored; background work waits.
  if (!opts.background) admitOrRefuse(ctx, model.id, owner);
  const fresh = { id: newId(surface), surface, principal, request, generation, background: opts.background ?? false };
  const jobFor = (record: ResponseRecord): PreparedGeneration => ({ recordId: record.id, generation, tokenizer: model.tokenizer, owner, ...prepared });
  if (!opts.idempotencyKey) {
    const record = ctx.store.create(fresh);
    return { replayed: false, record, job: jobFor(record) };
  }
  try {
    const got = ctx.idempotency.reserve(
      { principal, key: opts.idempotencyKey, surface, fingerprint: fingerprint(request) },
      (tx) => ctx.store.create(fresh, tx),
      (id, tx) => ctx.store.get(id, undefined, tx),
    );
    return got.kind === "replay" ? { replayed: true, record: got.record } : { replayed: false, record: got.record, job: jobFor(got.record) };
  } catch (err) {
    if (err instanceof IdempotencyMismatch) throw new ApiError("idempotency_error", err.message, { code: "idempotency_key_reused" });
    throw err;
  }
}

/** QueueFull as the envelope: 503 for the model's queue, 429 for one key's. */
function admitOrRefuse(ctx: AppContext, model: string, owner: string): void {
  try {
    ctx.scheduler.admit(model, owner);
  } catch (err) {
    if (!(err instanceof QueueFull)) throw err;
    if (err.reason === "rate_limited") throw new ApiError("rate_limit_error", err.message, { code: "rate_limit_exceeded" });
    throw new ApiError("overloaded_error", err.message, { code: "queue_full" });
  }
}

/**
 * The signal that cancels a sync request's generation: the client's connection, unless the
 * request carries an idempotency key. A keyed request is one the client means to retry after a
 * timeout or a dropped connection, so its work goes on and the retry replays the result instead
 * of finding a record cancelled by the first attempt's disconnect.
 */
export function outlivesClient(idempotencyKey: string | null, clientSignal: AbortSignal): AbortSignal | undefined {
  return idempotencyKey ? undefined : clientSignal;
}

/** Runs an accepted request to the end; engine failures become a 500 in the envelope. */
export async function runToEnd(
  ctx: AppContext, accepted: Extract<Accepted, { replayed: false }>, opts: { signal?: AbortSignal; onDelta?: OnDelta } = {},
): Promise<{ record: ResponseRecord; result: GenerationResult }> {
  try {
    const result = await ctx.scheduler.run(accepted.job, opts);
    return { record: ctx.store.get(accepted.record.id)!, result };
  } catch (err) {
    // Stopping: the record is back in the queue and runs on the next start; a retry with the
    // same idempotency key then finds it.
    if (err instanceof SchedulerStopped) throw new ApiError("overloaded_error", err.message, { code: "shutting_down" });
    if (err instanceof GenerationFailed) throw new ApiError("server_error", err.message, { code: "engine_error" });
    throw err;
  }
}

/**
 * A replayed sync request: waits for the twin's record to finish (the first request's client
 * gets the finished result, so a retry does too) and returns it. A failed record answers as the
 * first request was answered: a 500 with the stored error.
 */
export async function settledReplay(ctx: AppContext, record: ResponseRecord, signal?: AbortSignal): Promise<ResponseRecord> {
  const rec = isTerminal(record.status) ? record : await ctx.store.settled(record.id, signal);
  if (rec.status === "failed") {
    throw new ApiError("server_error", rec.error?.message ?? "The request failed.", { code: rec.error?.code ?? "server_error" });
  }
  return rec;
}

/** A finished record as the GenerationResult the surfaces render. */
export function resultOf(rec: ResponseRecord): GenerationResult {
  const usage = rec.usage ?? { inputTokens: 0, cachedTokens: 0, outputTokens: 0 };
  return {
    status: rec.status === "incomplete" || rec.status === "cancelled" ? rec.status : "completed",
    text: rec.output?.text ?? "",
    tokens: rec.output?.tokens ?? [],
    finishReason: rec.output?.finishReason ?? "stop",
    usage,
    timeToFirstTokenMs: null,
    decodeMs: 0,
  };
}
