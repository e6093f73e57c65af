// The Batch API (API.md, Batches): POST /v1/batches takes up to 100,000 Responses requests in
// one call; GET lists, reads, and streams their results; POST .../cancel stops the rest. Every
// item is validated exactly as POST /v1/responses validates its body (the same schema, tables
// and messages, with `requests[i].params.` before the parameter's name) before anything is
// stored; then the batch and all its items are written in one transaction, and the batch runner
// (src/scheduler/batches.ts) feeds the items to the scheduler as `standard` work.

import { Elysia, t, type Static } from "elysia";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { AppContext } from "./context.ts";
import { CLOSED, GenerationStatus, Int, Literals, Metadata, Nullable, Shape, checkMetadata, unixSeconds } from "./common.ts";
import { checkUnsupported } from "./unsupported.ts";
import { requireModel } from "./inference.ts";
import { ApiError, invalidRequest, notFound } from "./errors.ts";
import { schemaError } from "./validation.ts";
import { principalOf } from "./principal.ts";
import { IDEMPOTENCY_HEADER, REPLAYED_HEADER, idempotencyKeyOf } from "./idempotency.ts";
import { ResponseObject, ResponsesBody, renderResponse, responsesToGeneration } from "./responses.ts";
import { checkConstraint } from "./structured.ts";
import { documented } from "./openapi.ts";
import { newId } from "../store/ids.ts";
import { IdempotencyMismatch, canonicalJson, fingerprint } from "../store/idempotency.ts";
import { batchStatus, type BatchRow, type NewBatchItem, type StatusCounts } from "../store/batches.ts";
import { PromptError, PromptTooLong } from "../scheduler/models.ts";

export const BATCH_LIMITS = { maxRequests: 100_000, customIdLength: 512, labelLength: 128, listDefault: 25, listMax: 200 } as const;

export const BATCH_ENDPOINT = "/v1/responses";

const BatchBody = t.Object({
  endpoint: t.Literal(BATCH_ENDPOINT, { description: `"${BATCH_ENDPOINT}" (the only endpoint a batch can target)` }),
  requests: t.Array(t.Object({
    custom_id: t.String({ minLength: 1, maxLength: BATCH_LIMITS.customIdLength }),
    params: t.Record(t.String(), t.Any(), { description: "an object: the body of a POST /v1/responses request" }),
  }), { minItems: 1, description: `an array of 1 to ${BATCH_LIMITS.maxRequests} requests {custom_id, params}` }),
  label: t.Optional(t.String({ maxLength: BATCH_LIMITS.labelLength, pattern: "^[A-Za-z0-9_-]+$", description: `a string of at most ${BATCH_LIMITS.labelLength} letters, digits, '-' and '_'` })),
  metadata: t.Optional(Metadata),
});

/** An item's params: the Responses body, with unknown parameters refused as the route refuses them. */
const ItemParams = TypeCompiler.Compile(t.Object(ResponsesBody.properties, CLOSED));

/** Parameters a batch item may not set: items always run in the background and are never streamed. */
const ITEM_REFUSED = {
  background: "Batch items always run in the background: remove 'background'.",
  stream: "Batch items are not streamed: remove 'stream'; read the results with GET /v1/batches/{id}/results.",
} as const;

/** The item's error, renamed to its place in the batch: `requests[57312].params.temperature`. */
function atItem(err: ApiError, index: number): ApiError {
  const base = `requests[${index}].params`;
  const param = err.param === null ? base : err.param.startsWith("[") ? base + err.param : `${base}.${err.param}`;
  return new ApiError(err.type, `requests[${index}]: ${err.message}`, { param, code: err.code });
}

/** Validates one item as POST /v1/responses would, plus the batch's own rules. */
async function checkItem(ctx: AppContext, params: Record<string, unknown>, compiled: Map<string, Promise<void>>): Promise<NewBatchItem["generation"]> {
  for (const [name, message] of Object.entries(ITEM_REFUSED)) {
    if (params[name] !== undefined && params[name] !== null) throw invalidRequest(message, name, "unsupported_parameter");
  }
  checkUnsupported("responses", params);
  if (!ItemParams.Check(params)) throw schemaError(ItemParams.Errors(params).First());
  const body = params as typeof ResponsesBody.static;
  const model = requireModel(ctx, body.model);
  if (body.metadata?.completion_window === "asap") {
    throw invalidRequest("Batch items run in the 'standard' completion window; 'asap' is for requests sent on their own.", "metadata.completion_window", "invalid_completion_window");
  }
  if (!model.windows.includes("standard")) {
    throw invalidRequest(`Batch items run in the 'standard' completion window, which the model '${model.id}' does not offer.`, "model", "invalid_completion_window");
  }
  const generation = responsesToGeneration(body, model);
  if (generation.constraint) {
    // A batch often repeats one schema thousands of times: compile each distinct one once.
    const key = canonicalJson(generation.constraint);
    let check = compiled.get(key);
    if (!check) compiled.set(key, (check = checkConstraint(generation, { schema: "text.format.schema", tools: "tools" }, model)));
    await check;
  }
  try {
    await ctx.models.prepare(model, generation);
  } catch (err) {
    // the same errors as `accept` gives a request sent on its own
    if (err instanceof PromptTooLong) throw invalidRequest(err.message, null, "context_length_exceeded");
    if (err instanceof PromptError) throw invalidRequest(err.message, null, "invalid_prompt");
    throw err;
  }
  return generation;
}

type BatchRequest = typeof BatchBody.static;

/** Every item checked, in order; the first bad one is a 400 naming its index. Nothing is stored here. */
async function checkBatch(ctx: AppContext, body: BatchRequest): Promise<{ items: NewBatchItem[]; metadata: Record<string, string> }> {
  const metadata = checkMetadata(body.metadata);
  const window = metadata.completion_window;
  if (window !== undefined && window !== "standard") {
    throw invalidRequest(`A batch runs in the 'standard' completion window; metadata.completion_window may only be 'standard'.`, "metadata.completion_window", "invalid_completion_window");
  }
  const seen = new Set<string>();
  const compiled = new Map<string, Promise<void>>();
  const items: NewBatchItem[] = [];
  for (let i = 0; i < body.requests.length; i++) {
    const { custom_id: customId, params } = body.requests[i];
    if (seen.has(customId)) {
      throw invalidRequest(`requests[${i}]: custom_id '${customId}' is already used by an earlier request of the batch; each must be unique.`, `requests[${i}].custom_id`, "duplicate_custom_id");
    }
    seen.add(customId);
    let generation: NewBatchItem["generation"];
    try {
      generation = await checkItem(ctx, params, compiled);
    } catch (err) {
      if (err instanceof ApiError) throw atItem(err, i);
      throw err;
    }
    items.push({ id: newId("responses"), customId, request: params, generation });
  }
  return { items, metadata };
}

// What the routes answer with: a batch's summary (POST), with its status (list, cancel), with
// every item's status (GET one, and a batch webhook's body), and result lines.

const Count = Int({ minimum: 0 });
const SummaryFields = {
  id: t.String(),
  object: t.Literal("batch"),
  endpoint: t.Literal(BATCH_ENDPOINT),
  label: Nullable(t.String()),
  request_counts: Count,
  created_at: Int(),
  metadata: t.Record(t.String(), t.String()),
};
const StatusFields = {
  ...SummaryFields,
  status: Literals("queued", "in_progress", "cancelling", "completed", "cancelled"),
  status_counts: t.Object({ queued: Count, in_progress: Count, completed: Count, incomplete: Count, failed: Count, cancelled: Count }, CLOSED),
  cancelled_at: Nullable(Int()),
  completed_at: Nullable(Int()),
};
export const BatchSummaryObject = Shape("BatchSummary", SummaryFields);
export const BatchObject = Shape("Batch", StatusFields);
export const BatchStatusObject = Shape("BatchWithItems", {
  ...StatusFields,
  request_status: t.Record(t.String(), t.Object({ status: GenerationStatus, response_id: t.String() }, CLOSED), { description: "by custom_id" }),
});
export const BatchResultLine = Shape("BatchResultLine", { custom_id: t.String(), response: ResponseObject });

/** The object POST answers with. */
export function renderBatchSummary(b: BatchRow): Static<typeof BatchSummaryObject> {
  return {
    id: b.id, object: "batch", endpoint: b.endpoint as typeof BATCH_ENDPOINT, label: b.label, request_counts: b.requestCount,
    created_at: unixSeconds(b.createdAt), metadata: b.metadata,
  };
}

/** The summary with where the batch stands. */
export function renderBatch(b: BatchRow, counts: StatusCounts): Static<typeof BatchObject> {
  return {
    ...renderBatchSummary(b),
    status: batchStatus(b, counts),
    status_counts: counts,
    cancelled_at: b.cancelledAt === null ? null : unixSeconds(b.cancelledAt),
    completed_at: b.completedAt === null ? null : unixSeconds(b.completedAt),
  };
}

/** GET /v1/batches/{id}: the batch and every item's status by custom_id (also a batch webhook's body). */
export function renderBatchStatus(ctx: Pick<AppContext, "batches">, b: BatchRow): Static<typeof BatchStatusObject> {
  const requestStatus: Static<typeof BatchStatusObject>["request_status"] = {};
  for (const item of ctx.batches.itemStatuses(b.id)) requestStatus[item.customId] = { status: item.status, response_id: item.id };
  return { ...renderBatch(b, ctx.batches.counts(b.id)), request_status: requestStatus };
}

function ownedBatch(ctx: AppContext, id: string, request: Request): BatchRow {
  const b = ctx.batches.get(id, principalOf(request).organizationId);
  if (!b) throw notFound(`No batch with id '${id}' was found.`, "id");
  return b;
}

const RESULTS_PAGE = 25;

/** Every finished item as a JSON line, read from the store a page at a time as the client reads. */
function resultsStream(ctx: AppContext, batchId: string): ReadableStream<Uint8Array> {
  const utf8 = new TextEncoder();
  let cursor = -1;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const page = ctx.batches.finishedAfter(batchId, cursor, RESULTS_PAGE);
      if (page.length === 0) return controller.close();
      let text = "";
      for (const item of page) {
        const line: Static<typeof BatchResultLine> = { custom_id: item.customId!, response: renderResponse(item) };
        text += JSON.stringify(line) + "\n";
      }
      cursor = page[page.length - 1].batchIndex;
      controller.enqueue(utf8.encode(text));
    },
  }, { highWaterMark: 1 });
}

const ListQuery = t.Object({
  after_id: t.Optional(t.String()),
  before_id: t.Optional(t.String()),
  limit: t.Optional(t.String({ pattern: "^[0-9]+$", description: `an integer from 1 to ${BATCH_LIMITS.listMax}` })),
});

export function batchesRoutes(ctx: AppContext) {
  return new Elysia({ name: "batches" })
    .post("/v1/batches", async ({ body, request, set }) => {
      const principal = principalOf(request);
      const key = idempotencyKeyOf(request, "responses");
      const { items, metadata } = await checkBatch(ctx, body);
      const fresh = { id: newId("batch"), principal, endpoint: body.endpoint, label: body.label ?? null, metadata, items };
      let row: BatchRow;
      if (!key) {
        row = ctx.batches.create(fresh);
      } else {
        try {
          const got = ctx.idempotency.reserve(
            { principal, key, surface: "batches", fingerprint: fingerprint(body) },
            (tx) => ctx.batches.create(fresh, tx),
            (id, tx) => ctx.batches.get(id, undefined, tx),
          );
          if (got.kind === "replay") set.headers[REPLAYED_HEADER] = "true";
          row = got.record;
        } catch (err) {
          if (err instanceof IdempotencyMismatch) throw new ApiError("idempotency_error", err.message, { code: "idempotency_key_reused" });
          throw err;
        }
      }
      ctx.batchRunner.wake();
      return renderBatchSummary(row);
    }, {
      transform: ({ body }) => {
        const requests = (body as { requests?: unknown } | null)?.requests;
        if (Array.isArray(requests) && requests.length > BATCH_LIMITS.maxRequests) {
          throw invalidRequest(`A batch holds at most ${BATCH_LIMITS.maxRequests} requests; this one has ${requests.length}.`, "requests", "too_many_requests");
        }
      },
      body: BatchBody,
      detail: documented({ 200: BatchSummaryObject }, "Create a batch of Responses requests", { idempotencyHeader: IDEMPOTENCY_HEADER.responses }),
    })
    .get("/v1/batches", ({ query, request }) => {
      const limit = query.limit === undefined ? BATCH_LIMITS.listDefault : Number(query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > BATCH_LIMITS.listMax) {
        throw invalidRequest(`Invalid value for 'limit': ${query.limit}. Expected an integer from 1 to ${BATCH_LIMITS.listMax}.`, "limit", "invalid_value");
      }
      const org = principalOf(request).organizationId;
      for (const [param, id] of [["after_id", query.after_id], ["before_id", query.before_id]] as const) {
        if (id !== undefined && !ctx.batches.get(id, org)) throw notFound(`No batch with id '${id}' was found.`, param);
      }
      return ctx.batches.list(org, { afterId: query.after_id, beforeId: query.before_id, limit })
        .map((b) => renderBatch(b, ctx.batches.counts(b.id)));
    }, { query: ListQuery, detail: documented({ 200: t.Array(BatchObject) }, "List batches, newest first") })
    .get("/v1/batches/:id", ({ params, request }) => renderBatchStatus(ctx, ownedBatch(ctx, params.id, request)), {
      detail: documented({ 200: BatchStatusObject }, "Retrieve a batch and every item's status"),
    })
    .post("/v1/batches/:id/cancel", ({ params, request }) => {
      const b = ownedBatch(ctx, params.id, request);
      const after = ctx.batches.cancel(b.id);
      return renderBatch(after, ctx.batches.counts(b.id));
    }, { detail: documented({ 200: BatchObject }, "Cancel a batch's queued items") })
    .get("/v1/batches/:id/results", ({ params, request }) => {
      const b = ownedBatch(ctx, params.id, request);
      return new Response(resultsStream(ctx, b.id), { headers: { "content-type": "application/x-ndjson" } });
    }, { detail: documented({ 200: { "application/x-ndjson": BatchResultLine } }, "Every finished item, one JSON line each") })
    .get("/v1/batches/:id/:custom_id", ({ params, request }) => {
      const b = ownedBatch(ctx, params.id, request);
      const customId = decodeURIComponent(params.custom_id);
      const rec = ctx.batches.item(b.id, customId);
      if (!rec) throw notFound(`The batch '${b.id}' has no request with custom_id '${customId}'.`, "custom_id");
      return renderResponse(rec);
    }, { detail: documented({ 200: ResponseObject }, "One item's Response, by custom_id") });
}
