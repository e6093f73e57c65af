// POST /v1/responses and GET /v1/responses/{id}: the recommended surface. The request becomes a
// Generation; every stored record, whatever surface created it, renders as a Response object.

import { Elysia, t, type Static } from "elysia";
import type { AppContext } from "./context.ts";
import { CLOSED, GenerationStatus, Int, Literals, Metadata, Nullable, PositiveInt, Shape, Temperature2, Unit, User, checkMetadata, resolveWindow, unixSeconds } from "./common.ts";
import { checkUnsupported } from "./unsupported.ts";
import { accept, outlivesClient, requireModel, runToEnd } from "./inference.ts";
import { invalidRequest, notFound } from "./errors.ts";
import { principalOf } from "./principal.ts";
import { IDEMPOTENCY_HEADER, REPLAYED_HEADER, idempotencyKeyOf } from "./idempotency.ts";
import type { Generation, GenerationMessage, GenerationTool, Role } from "../generation.ts";
import { StructuredOutputs, checkConstraint, grammarConstraint, toolFields } from "./structured.ts";
import { customToolInput, parseToolCalls } from "../tool-calls.ts";
import { ReasoningEffort, afterReasoning, outputParts, reasoningFields, reasoningTokens } from "./reasoning.ts";
import type { ResponseRecord } from "../store/responses.ts";
import type { ServedModel } from "../scheduler/models.ts";
import { documented } from "./openapi.ts";

const InputPart = t.Union([
  t.Object({ type: t.Literal("input_text"), text: t.String() }),
  t.Object({ type: t.Literal("output_text"), text: t.String() }),
  t.Object({ type: t.Literal("refusal"), refusal: t.String() }),
  t.Object({ type: t.Literal("input_image"), image_url: t.Optional(Nullable(t.String())), file_id: t.Optional(Nullable(t.String())), detail: t.Optional(t.String()) }),
], { description: "a content part {type: 'input_text' | 'output_text' | 'input_image', ...}" });

const MessageItem = t.Object({
  type: t.Optional(t.Literal("message")),
  role: t.Union([t.Literal("user"), t.Literal("assistant"), t.Literal("system"), t.Literal("developer")], { description: "'user', 'assistant', 'system' or 'developer'" }),
  content: t.Union([t.String(), t.Array(InputPart)], { description: "a string or an array of content parts" }),
});

const FunctionCallItem = t.Object({
  type: t.Literal("function_call"), call_id: t.String(), name: t.String(), arguments: t.String(),
});
const FunctionCallOutputItem = t.Object({
  type: t.Literal("function_call_output"), call_id: t.String(), output: t.Union([t.String(), t.Array(t.Any())]),
});
const CustomToolCallItem = t.Object({
  type: t.Literal("custom_tool_call"), call_id: t.String(), name: t.String(), input: t.String(),
});
const CustomToolCallOutputItem = t.Object({
  type: t.Literal("custom_tool_call_output"), call_id: t.String(), output: t.Union([t.String(), t.Array(t.Any())]),
});
/** Reasoning items are replayed by agent loops as they came back: their text goes to the next assistant turn. */
const ReasoningItem = t.Object({
  type: t.Literal("reasoning"),
  id: t.Optional(t.String()),
  summary: t.Optional(t.Array(t.Any())),
  content: t.Optional(Nullable(t.Array(t.Object({ type: t.String(), text: t.String() })))),
  encrypted_content: t.Optional(Nullable(t.String())),
  status: t.Optional(Nullable(t.String())),
});

const InputItem = t.Union([MessageItem, FunctionCallItem, FunctionCallOutputItem, CustomToolCallItem, CustomToolCallOutputItem, ReasoningItem], {
  description: "a message {role, content}, a function_call, function_call_output, custom_tool_call or custom_tool_call_output item",
});

const Tool = t.Union([
  t.Object({ type: t.Literal("function"), name: t.String(), description: t.Optional(Nullable(t.String())), parameters: t.Optional(Nullable(t.Record(t.String(), t.Any()))), strict: t.Optional(Nullable(t.Boolean())) }),
  t.Object({ type: t.Literal("custom"), name: t.String(), description: t.Optional(t.String()), format: t.Optional(t.Any()) }),
], { description: "a tool {type: 'function' | 'custom', name, ...}" });

const Summary = t.Union(["auto", "concise", "detailed"].map((v) => t.Literal(v)), { description: "one of auto, concise, detailed" });

const TextConfig = t.Object({
  format: t.Optional(t.Union([
    t.Object({ type: t.Literal("text") }),
    t.Object({ type: t.Literal("json_schema"), name: t.String(), schema: t.Record(t.String(), t.Any()), strict: t.Optional(Nullable(t.Boolean())), description: t.Optional(t.String()) }),
  ], { description: "{type: 'text'} or {type: 'json_schema', name, schema, strict}" })),
});

const ReasoningConfig = t.Object({
  effort: t.Optional(Nullable(ReasoningEffort)),
  summary: t.Optional(Nullable(Summary)),
  generate_summary: t.Optional(Nullable(Summary)),
});

const ToolChoice = t.Union([
  t.Literal("none"), t.Literal("auto"), t.Literal("required"),
  t.Object({ type: t.Union([t.Literal("function"), t.Literal("custom")]), name: t.String() }),
], { description: "'none', 'auto', 'required' or {type: 'function' | 'custom', name}" });

export const ResponsesBody = t.Object({
  model: t.String({ minLength: 1 }),
  input: t.Union([t.String({ minLength: 1 }), t.Array(InputItem, { minItems: 1 })], { description: "a non-empty string or a non-empty array of input items" }),
  max_output_tokens: t.Optional(PositiveInt),
  temperature: t.Optional(Temperature2),
  top_p: t.Optional(Unit),
  top_logprobs: t.Optional(Nullable(Int({ minimum: 0, maximum: 20 }))),
  user: t.Optional(Nullable(User)),
  prompt_cache_key: t.Optional(Nullable(t.String())),
  metadata: t.Optional(Metadata),
  text: t.Optional(Nullable(TextConfig)),
  structured_outputs: t.Optional(Nullable(StructuredOutputs)),
  reasoning: t.Optional(Nullable(ReasoningConfig)),
  tools: t.Optional(Nullable(t.Array(Tool))),
  tool_choice: t.Optional(Nullable(ToolChoice)),
  include: t.Optional(Nullable(t.Array(t.String()))),
  background: t.Optional(Nullable(t.Boolean())),
  store: t.Optional(Nullable(t.Boolean())),
  stream: t.Optional(Nullable(t.Boolean())),
  truncation: t.Optional(Nullable(t.String())),
  service_tier: t.Optional(Nullable(t.String())),
});
export type ResponsesRequest = Static<typeof ResponsesBody>;

export const LOGPROBS_INCLUDE = "message.output_text.logprobs";

function partText(part: Static<typeof InputPart>, at: string, model: ServedModel): string {
  switch (part.type) {
    case "input_text":
    case "output_text":
      return part.text;
    case "refusal":
      return part.refusal;
    case "input_image":
      if (!model.multimodal) throw invalidRequest(`The model '${model.id}' does not accept image input.`, at, "image_input_not_supported");
      throw invalidRequest("Image input is not supported yet.", at, "image_input_not_supported");
  }
}

function toMessages(items: Static<typeof InputItem>[], model: ServedModel): GenerationMessage[] {
  const messages: GenerationMessage[] = [];
  // A replayed reasoning item belongs to the assistant turn that follows it.
  let reasoning: string | undefined;
  const assistantTurn = (m: GenerationMessage): GenerationMessage => {
    if (reasoning !== undefined) m.reasoning = reasoning;
    reasoning = undefined;
    return m;
  };
  items.forEach((item, i) => {
    switch (item.type) {
      case "function_call":
      case "custom_tool_call": {
        // the model saw a custom tool as a function of one string (CUSTOM_TOOL_PARAMETERS)
        const args = item.type === "function_call" ? item.arguments : JSON.stringify({ input: item.input });
        const call = { id: item.call_id, name: item.name, arguments: args };
        const last = messages[messages.length - 1];
        if (last?.role === "assistant") (last.toolCalls ??= []).push(call);
        else messages.push(assistantTurn({ role: "assistant", content: "", toolCalls: [call] }));
        return;
      }
      case "function_call_output":
      case "custom_tool_call_output":
        messages.push({ role: "tool", toolCallId: item.call_id, content: typeof item.output === "string" ? item.output : JSON.stringify(item.output) });
        return;
      case "reasoning": {
        const text = (item.content ?? []).filter((p) => p.type === "reasoning_text").map((p) => p.text).join("\n");
        if (text) reasoning = text;
        return;
      }
      default: {
        const content = typeof item.content === "string"
          ? item.content
          : item.content.map((p, j) => partText(p, `input[${i}].content[${j}]`, model)).join("");
        const message: GenerationMessage = { role: item.role as Role, content };
        messages.push(item.role === "assistant" ? assistantTurn(message) : message);
      }
    }
  });
  return messages;
}

/** The neutral Generation a Responses request describes. */
export function responsesToGeneration(body: ResponsesRequest, model: ServedModel): Generation {
  const metadata = checkMetadata(body.metadata);
  const tools: GenerationTool[] = (body.tools ?? []).map((tool) => ({
    type: tool.type, name: tool.name, description: tool.description ?? undefined,
    parameters: "parameters" in tool ? tool.parameters ?? undefined : undefined,
  }));
  const choice = body.tool_choice ?? "auto";
  // /v1/responses refuses parallel_tool_calls and echoes false: one call a turn.
  const toolPart = toolFields(model, tools, typeof choice === "string" ? choice : { name: choice.name }, false, "tool_choice");
  const format = body.text?.format;
  const schemaConstraint = format?.type === "json_schema"
    ? { type: "json_schema" as const, schema: format.schema, ...(typeof format.strict === "boolean" ? { strict: format.strict } : {}) }
    : null;
  const reasoning = reasoningFields(model, body.reasoning?.effort);
  // Forced tool calls win over a response format: the output is the calls.
  const structure = toolPart.constraint ?? schemaConstraint;
  return {
    model: model.id,
    input: typeof body.input === "string" ? { kind: "text", text: body.input } : { kind: "messages", messages: toMessages(body.input, model) },
    maxOutputTokens: body.max_output_tokens ?? null,
    temperature: body.temperature ?? 1,
    topP: body.top_p ?? 1,
    logprobs: (body.include ?? []).includes(LOGPROBS_INCLUDE),
    topLogprobs: body.top_logprobs ?? 0,
    tools,
    // A grammar describes the whole output; other structures leave a thinking model its block.
    constraint: body.structured_outputs ? grammarConstraint(body.structured_outputs, structure) : afterReasoning(structure, reasoning.reasoning),
    toolCallFormat: toolPart.toolCallFormat,
    ...reasoning,
    metadata,
    window: resolveWindow(metadata, model.windows),
    user: body.user ?? null,
    promptCacheKey: body.prompt_cache_key ?? null,
  };
}

// What POST /v1/responses and GET /v1/responses/{id} answer with: the Response object.

const Logprob = { token: t.String(), logprob: t.Number(), bytes: t.Array(Int({ minimum: 0, maximum: 255 })) };
const TokenLogprob = t.Object({ ...Logprob, logprob: Nullable(t.Number()), top_logprobs: t.Array(t.Object(Logprob, CLOSED)) }, CLOSED);
const OutputText = t.Object({
  type: t.Literal("output_text"), text: t.String(), annotations: t.Array(t.Never()),
  logprobs: t.Optional(t.Array(TokenLogprob, { description: "with include: ['message.output_text.logprobs']" })),
}, CLOSED);
const ItemStatus = Literals("completed", "incomplete");

const OutputItem = t.Union([
  t.Object({ type: t.Literal("message"), id: t.String(), status: ItemStatus, role: t.Literal("assistant"), content: t.Array(OutputText) }, CLOSED),
  t.Object({ type: t.Literal("function_call"), id: t.String(), call_id: t.String(), name: t.String(), arguments: t.String(), status: ItemStatus }, CLOSED),
  t.Object({ type: t.Literal("custom_tool_call"), id: t.String(), call_id: t.String(), name: t.String(), input: t.String(), status: ItemStatus }, CLOSED),
  t.Object({
    type: t.Literal("reasoning"), id: t.String(), summary: t.Array(t.Never()),
    content: t.Array(t.Object({ type: t.Literal("reasoning_text"), text: t.String() }, CLOSED)), status: ItemStatus,
  }, CLOSED),
]);

const ResponseUsage = t.Object({
  input_tokens: Int({ minimum: 0 }),
  input_tokens_details: t.Object({ cached_tokens: Int({ minimum: 0 }) }, CLOSED),
  output_tokens: Int({ minimum: 0 }),
  output_tokens_details: t.Object({ reasoning_tokens: Int({ minimum: 0 }) }, CLOSED),
  total_tokens: Int({ minimum: 0 }),
  prompt_tokens: Int({ minimum: 0, description: "input_tokens, under Chat Completions' name" }),
  completion_tokens: Int({ minimum: 0, description: "output_tokens, under Chat Completions' name" }),
}, CLOSED);

export const ResponseObject = Shape("Response", {
  id: t.String(),
  object: t.Literal("response"),
  created_at: Int(),
  completed_at: Nullable(Int()),
  status: GenerationStatus,
  background: t.Boolean(),
  error: Nullable(t.Object({ code: t.String(), message: t.String() }, CLOSED)),
  incomplete_details: Nullable(t.Object({ reason: t.String() }, CLOSED)),
  instructions: t.Null(),
  model: t.String(),
  output: t.Array(OutputItem, { description: "empty until the response finishes" }),
  output_text: t.String(),
  usage: Nullable(ResponseUsage),
  metadata: t.Record(t.String(), t.String()),
  max_output_tokens: Nullable(Int({ minimum: 1 })),
  temperature: t.Number(),
  top_p: t.Number(),
  top_logprobs: Int({ minimum: 0, maximum: 20 }),
  text: TextConfig,
  reasoning: ReasoningConfig,
  tools: t.Array(Tool),
  tool_choice: ToolChoice,
  parallel_tool_calls: t.Literal(false),
  truncation: t.Literal("disabled"),
  store: t.Literal(true),
  service_tier: t.Literal("auto"),
  user: Nullable(t.String()),
});
export type ResponseObject = Static<typeof ResponseObject>;

type OutputItem = Static<typeof OutputItem>;

/** Another surface's tool, as a Responses request would have declared it. */
const echoTool = (tool: GenerationTool): Static<typeof Tool> => tool.type === "custom"
  ? { type: "custom", name: tool.name, ...(tool.description === undefined ? {} : { description: tool.description }) }
  : { type: "function", name: tool.name, description: tool.description ?? null, parameters: (tool.parameters ?? null) as Record<string, unknown> | null, strict: null };

const utf8 = new TextEncoder();

/** A stored record as an OpenAI Response object (the same body for every surface's records). */
export function renderResponse(rec: ResponseRecord): ResponseObject {
  const gen = rec.generation;
  const req = (rec.surface === "responses" ? rec.request : {}) as Partial<ResponsesRequest>;
  const out = rec.output;
  const finished = out !== null;
  const parts = outputParts(out?.text ?? "", gen);
  const thoughtTokens = out ? reasoningTokens(out.tokens, gen) : 0;
  const content: Static<typeof OutputText> = { type: "output_text", text: parts.content, annotations: [] };
  if (gen.logprobs && out) {
    content.logprobs = out.tokens.slice(thoughtTokens).map((tok) => ({
      token: tok.text, logprob: tok.logprob ?? null, bytes: [...utf8.encode(tok.text)],
      top_logprobs: (tok.top ?? []).map((a) => ({ token: a.text, logprob: a.logprob, bytes: [...utf8.encode(a.text)] })),
    }));
  }
  const suffix = rec.id.replace(/^[a-z]+[_-]/, "");
  const parsed = out && gen.toolCallFormat ? parseToolCalls(parts.content, gen.toolCallFormat, gen.tools.map((t) => t.name)) : { text: parts.content, calls: [] };
  if (parsed.calls.length) content.text = parsed.text;
  const custom = new Set(gen.tools.filter((t) => t.type === "custom").map((t) => t.name));
  const calls = parsed.calls.map((c, i): OutputItem => custom.has(c.name)
    ? { type: "custom_tool_call", id: `ctc_${suffix}_${i}`, call_id: `call_${suffix}_${i}`, name: c.name, input: customToolInput(c.arguments), status: "completed" }
    : { type: "function_call", id: `fc_${suffix}_${i}`, call_id: `call_${suffix}_${i}`, name: c.name, arguments: c.arguments, status: "completed" });
  const message: OutputItem = { type: "message", id: `msg_${suffix}`, status: rec.status === "completed" ? "completed" : "incomplete", role: "assistant", content: [content] };
  // The reasoning comes first, as its own item; a turn that is only calls has no message item.
  const thought: OutputItem[] = parts.reasoning === null ? [] : [{
    type: "reasoning", id: `rs_${suffix}`, summary: [], content: [{ type: "reasoning_text", text: parts.reasoning }], status: "completed",
  }];
  const output = finished ? [...thought, ...(calls.length && !parsed.text ? [] : [message]), ...calls] : [];
  const usage = rec.usage && {
    input_tokens: rec.usage.inputTokens,
    input_tokens_details: { cached_tokens: rec.usage.cachedTokens },
    output_tokens: rec.usage.outputTokens,
    output_tokens_details: { reasoning_tokens: thoughtTokens },
    total_tokens: rec.usage.inputTokens + rec.usage.outputTokens,
    prompt_tokens: rec.usage.inputTokens,
    completion_tokens: rec.usage.outputTokens,
  };
  return {
    id: rec.id,
    object: "response",
    created_at: unixSeconds(rec.createdAt),
    completed_at: rec.completedAt === null ? null : unixSeconds(rec.completedAt),
    status: rec.status,
    background: rec.background,
    error: rec.error,
    incomplete_details: rec.incompleteReason ? { reason: rec.incompleteReason } : null,
    instructions: null,
    model: rec.model,
    output,
    output_text: parsed.text,
    usage: usage ?? null,
    metadata: gen.metadata,
    max_output_tokens: gen.maxOutputTokens,
    temperature: gen.temperature,
    top_p: gen.topP,
    top_logprobs: gen.topLogprobs ?? 0,
    text: req.text ?? { format: { type: "text" } },
    reasoning: req.reasoning ?? { effort: null, summary: null },
    tools: req.tools ?? gen.tools.map(echoTool),
    tool_choice: req.tool_choice ?? "auto",
    parallel_tool_calls: false,
    truncation: "disabled",
    store: true,
    service_tier: "auto",
    user: gen.user,
  };
}

export function responsesRoutes(ctx: AppContext) {
  return new Elysia({ name: "responses" })
    .post("/v1/responses", async ({ body, request, set }) => {
      const principal = principalOf(request);
      const idempotencyKey = idempotencyKeyOf(request, "responses");
      const model = requireModel(ctx, body.model);
      const background = body.background === true;
      const generation = responsesToGeneration(body, model);
      await checkConstraint(generation, { schema: "text.format.schema", tools: "tools" }, model);
      const accepted = await accept(ctx, "responses", principal, body, model, generation, { background, idempotencyKey });
      if (accepted.replayed) {
        set.headers[REPLAYED_HEADER] = "true";
        // A background twin answers with its current state; a sync twin with its finished record.
        const rec = accepted.record.background ? accepted.record : await ctx.store.settled(accepted.record.id, request.signal);
        set.status = rec.background ? 202 : 200;
        return renderResponse(rec);
      }
      if (background) {
        ctx.background.submit(accepted.job);
        set.status = 202;
        return renderResponse(accepted.record);
      }
      const { record } = await runToEnd(ctx, accepted, { signal: outlivesClient(idempotencyKey, request.signal) });
      return renderResponse(record);
    }, {
      transform: ({ body }) => checkUnsupported("responses", body),
      body: ResponsesBody,
      detail: documented({ 200: ResponseObject, 202: ResponseObject }, "Create a response (202 when background: true)", { idempotencyHeader: IDEMPOTENCY_HEADER.responses }),
    })
    .get("/v1/responses/:id", ({ params, request }) => {
      return renderResponse(ownedRecord(ctx, params.id, request));
    }, { detail: documented({ 200: ResponseObject }, "Retrieve a response") })
    // OpenAI's rules: only background responses can be cancelled (400 otherwise); cancelling
    // one that already finished is not an error and returns it as it is (idempotent).
    .post("/v1/responses/:id/cancel", async ({ params, request }) => {
      const rec = ownedRecord(ctx, params.id, request);
      if (!rec.background) {
        throw invalidRequest(`Only background responses can be cancelled; '${params.id}' was not created with background: true.`, "id", "not_background");
      }
      return renderResponse(await ctx.background.cancel(rec));
    }, { detail: documented({ 200: ResponseObject }, "Cancel a background response") });
}

function ownedRecord(ctx: AppContext, id: string, request: Request): ResponseRecord {
  const rec = ctx.store.get(id, principalOf(request).organizationId);
  if (!rec) throw notFound(`No response with id '${id}' was found.`, "id");
  return rec;
}
