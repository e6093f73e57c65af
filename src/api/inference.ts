// The path every surface takes once it has a Generation: find the model, build the prompt,
// store the record, queue it, wait for the result. Surface-neutral: adapters call this and
// render what comes back.

import type { AppContext } from "./context.ts";
import type { Generation, GenerationResult, OnDelta } from "../generation.ts";
import type { Surface } from "./unsupported.ts";
import type { Principal } from "../store/keys.ts";
import type { ResponseRecord } from "../store/responses.ts";
import { PromptError, PromptTooLong, type ServedModel } from "../scheduler/models.ts";
import { GenerationFailed, type PreparedGeneration } from "../scheduler/queue.ts";
import { ApiError, invalidRequest, unknownModel } from "./errors.ts";
import { newId } from "../store/ids.ts";

export function requireModel(ctx: AppContext, id: string): ServedModel {
  const model = ctx.models.get(id);
  if (!model) throw unknownModel(id);
  return model;
}

export interface Accepted {
  record: ResponseRecord;
  job: PreparedGeneration;
}

/** Tokenizes and stores the request; after this the request is accepted (and recorded). */
export function accept(
  ctx: AppContext, surface: Surface, principal: Principal, request: unknown, model: ServedModel, generation: Generation,
): Accepted {
  let prepared: { promptIds: number[]; maxTokens: number };
  try {
    prepared = ctx.models.prepare(model, generation);
  } catch (err) {
    if (err instanceof PromptTooLong) throw invalidRequest(err.message, null, "context_length_exceeded");
    if (err instanceof PromptError) throw invalidRequest(err.message, null, "invalid_prompt");
    throw err;
  }
  const record = ctx.store.create({ id: newId(surface), surface, principal, request, generation });
  return { record, job: { recordId: record.id, generation, tokenizer: model.tokenizer, ...prepared } };
}

/** Runs an accepted request to the end; engine failures become a 500 in the envelope. */
export async function runToEnd(
  ctx: AppContext, accepted: Accepted, opts: { signal?: AbortSignal; onDelta?: OnDelta } = {},
): Promise<{ record: ResponseRecord; result: GenerationResult }> {
  try {
    const result = await ctx.scheduler.run(accepted.job, opts);
    return { record: ctx.store.get(accepted.record.id)!, result };
  } catch (err) {
    if (err instanceof GenerationFailed) throw new ApiError("server_error", err.message, { code: "engine_error" });
    throw err;
  }
}
