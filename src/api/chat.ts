// POST /v1/chat/completions: JSON or SSE (the only streaming surface). One choice; finish_reason
// is "stop" (or "tool_calls"); usage carries the details objects the OpenAI SDK types expect.

import { Elysia, t, type Static } from "elysia";
import type { AppContext } from "./context.ts";
import { CLOSED, Int, Literals, Metadata, Nullable, PositiveInt, Shape, Temperature2, Unit, User, checkMetadata, resolveWindow, unixSeconds } from "./common.ts";
import { checkUnsupported } from "./unsupported.ts";
import { accept, outlivesClient, requireModel, resultOf, runToEnd, settledReplay } from "./inference.ts";
import { IDEMPOTENCY_HEADER, REPLAYED_HEADER, idempotencyKeyOf } from "./idempotency.ts";
import { invalidRequest, toApiError } from "./errors.ts";
import { principalOf } from "./principal.ts";
import { sseResponse } from "./sse.ts";
import type { Generation, GenerationMessage, GenerationResult, GenerationTool, Role } from "../generation.ts";
import type { ServedModel } from "../scheduler/models.ts";
import { documented } from "./openapi.ts";
import type { OutputConstraint } from "../engine/grammar/index.ts";
import { StructuredOutputs, checkConstraint, grammarConstraint, toolFields } from "./structured.ts";
import { ToolCallHoldback, parseToolCalls, type ParsedOutput } from "../tool-calls.ts";
import { ReasoningStream } from "../reasoning.ts";
import { ReasoningEffort, afterReasoning, outputParts, reasoningFields, reasoningTokens } from "./reasoning.ts";

const ContentPart = t.Union([
  t.Object({ type: t.Literal("text"), text: t.String() }),
  t.Object({ type: t.Literal("image_url"), image_url: t.Object({ url: t.String(), detail: t.Optional(t.String()) }) }),
  t.Object({ type: t.Literal("refusal"), refusal: t.String() }),
], { description: "a content part {type: 'text', text} or {type: 'image_url', image_url: {url}}" });

const ToolCall = t.Object({
  id: t.String(), type: t.Optional(t.String()),
  function: t.Object({ name: t.String(), arguments: t.String() }),
});

const Message = t.Object({
  role: t.Union(["system", "developer", "user", "assistant", "tool", "function"].map((r) => t.Literal(r)), {
    description: "'system', 'developer', 'user', 'assistant', 'tool' or 'function'",
  }),
  content: t.Optional(Nullable(t.Union([t.String(), t.Array(ContentPart)], { description: "a string or an array of content parts" }))),
  name: t.Optional(t.String()),
  tool_calls: t.Optional(Nullable(t.Array(ToolCall))),
  tool_call_id: t.Optional(t.String()),
  /** Clients replay an assistant turn's reasoning as they received it. */
  reasoning_content: t.Optional(Nullable(t.String())),
});

const Tool = t.Union([
  t.Object({ type: t.Literal("function"), function: t.Object({ name: t.String(), description: t.Optional(t.String()), parameters: t.Optional(t.Record(t.String(), t.Any())), strict: t.Optional(Nullable(t.Boolean())) }) }),
  t.Object({ type: t.Literal("custom"), custom: t.Object({ name: t.String(), description: t.Optional(t.String()), format: t.Optional(t.Any()) }) }),
], { description: "a tool {type: 'function', function: {name, ...}} or {type: 'custom', custom: {name, ...}}" });

export const ChatBody = t.Object({
  model: t.String({ minLength: 1 }),
  messages: t.Array(Message, { minItems: 1 }),
  max_completion_tokens: t.Optional(PositiveInt),
  temperature: t.Optional(Temperature2),
  top_p: t.Optional(Unit),
  user: t.Optional(Nullable(User)),
  prompt_cache_key: t.Optional(Nullable(t.String({ maxLength: 1024 }))),
  metadata: t.Optional(Metadata),
  response_format: t.Optional(Nullable(t.Union([
    t.Object({ type: t.Literal("text") }),
    t.Object({ type: t.Literal("json_object") }),
    t.Object({
      type: t.Literal("json_schema"),
      json_schema: t.Object({ name: t.String(), description: t.Optional(t.String()), schema: t.Optional(t.Record(t.String(), t.Any())), strict: t.Optional(Nullable(t.Boolean())) }),
    }),
  ], { description: "{type: 'text'}, {type: 'json_object'} or {type: 'json_schema', json_schema: {name, schema, strict}}" }))),
  reasoning_effort: t.Optional(Nullable(ReasoningEffort)),
  structured_outputs: t.Optional(Nullable(StructuredOutputs)),
  tools: t.Optional(Nullable(t.Array(Tool))),
  tool_choice: t.Optional(Nullable(t.Union([
    t.Literal("none"), t.Literal("auto"), t.Literal("required"),
    t.Object({ type: t.Literal("function"), function: t.Object({ name: t.String() }) }),
    t.Object({ type: t.Literal("custom"), custom: t.Object({ name: t.String() }) }),
  ], { description: "'none', 'auto', 'required' or a named tool {type: 'function', function: {name}}" }))),
  parallel_tool_calls: t.Optional(Nullable(t.Boolean())),
  n: t.Optional(Nullable(Int())),
  modalities: t.Optional(Nullable(t.Array(t.String()))),
  store: t.Optional(Nullable(t.Boolean())),
  service_tier: t.Optional(Nullable(t.String())),
  stream: t.Optional(Nullable(t.Boolean())),
  stream_options: t.Optional(Nullable(t.Object({ include_usage: t.Optional(Nullable(t.Boolean())) }))),
});
export type ChatRequest = Static<typeof ChatBody>;

/** The deprecated `function` role is the old name of `tool`. */
const ROLE: Record<Static<typeof Message>["role"], Role> = {
  system: "system", developer: "developer", user: "user", assistant: "assistant", tool: "tool", function: "tool",
};

function messageText(m: Static<typeof Message>, i: number, model: ServedModel): string {
  if (m.content == null) return "";
  if (typeof m.content === "string") return m.content;
  return m.content.map((part, j) => {
    if (part.type === "text") return part.text;
    if (part.type === "refusal") return part.refusal;
    throw invalidRequest(`The model '${model.id}' does not accept image input.`, `messages[${i}].content[${j}]`, "image_input_not_supported");
  }).join("");
}

export function chatToGeneration(body: ChatRequest, model: ServedModel): Generation {
  if (body.stream_options != null && body.stream !== true) {
    throw invalidRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options", "invalid_value");
  }
  const metadata = checkMetadata(body.metadata);
  const messages: GenerationMessage[] = body.messages.map((m, i) => ({
    role: ROLE[m.role],
    content: messageText(m, i, model),
    ...(m.tool_calls?.length ? { toolCalls: m.tool_calls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })) } : {}),
    ...(m.tool_call_id ? { toolCallId: m.tool_call_id } : {}),
    ...(m.role === "assistant" && m.reasoning_content ? { reasoning: m.reasoning_content } : {}),
  }));
  const tools: GenerationTool[] = (body.tools ?? []).map((tool) =>
    tool.type === "function"
      ? { type: "function", name: tool.function.name, description: tool.function.description, parameters: tool.function.parameters }
      : { type: "custom", name: tool.custom.name, description: tool.custom.description });
  const choice = body.tool_choice ?? "auto";
  const named = typeof choice === "string" ? choice : { name: choice.type === "function" ? choice.function.name : choice.custom.name };
  const toolPart = toolFields(model, tools, named, body.parallel_tool_calls !== false, "tool_choice");
  const reasoning = reasoningFields(model, body.reasoning_effort);
  // Forced tool calls win over a response format: the output is the calls.
  const structure = toolPart.constraint ?? formatConstraint(body.response_format);
  return {
    model: model.id,
    input: { kind: "messages", messages },
    maxOutputTokens: body.max_completion_tokens ?? null,
    temperature: body.temperature ?? 1,
    topP: body.top_p ?? 1,
    logprobs: false,
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

function formatConstraint(f: ChatRequest["response_format"]): OutputConstraint | null {
  if (!f || f.type === "text") return null;
  if (f.type === "json_object" || f.json_schema.schema === undefined) return { type: "json_object" };
  return { type: "json_schema", schema: f.json_schema.schema, ...(typeof f.json_schema.strict === "boolean" ? { strict: f.json_schema.strict } : {}) };
}

/** The answer split into text and tool calls (none unless the generation parses them). */
function answerOutput(text: string, gen: Generation | undefined): ParsedOutput {
  const format = gen?.toolCallFormat;
  return format ? parseToolCalls(text, format, gen.tools.map((t) => t.name)) : { text, calls: [] };
}

/** The output split into reasoning (null without one), text and tool calls. */
export function chatOutput(text: string, gen: Generation | undefined): ParsedOutput & { reasoning: string | null } {
  const parts = outputParts(text, gen);
  return { reasoning: parts.reasoning, ...answerOutput(parts.content, gen) };
}

// What the route answers with: a ChatCompletion, or with `stream: true` ChatCompletionChunk events.

const FinishReason = Literals("stop", "tool_calls");
const OutputToolCall = t.Object({
  id: t.String(), type: t.Literal("function"), function: t.Object({ name: t.String(), arguments: t.String() }, CLOSED),
}, CLOSED);

const ChatUsage = t.Object({
  prompt_tokens: Int({ minimum: 0 }),
  completion_tokens: Int({ minimum: 0 }),
  total_tokens: Int({ minimum: 0 }),
  prompt_tokens_details: t.Object({ cached_tokens: Int({ minimum: 0 }) }, CLOSED),
  completion_tokens_details: t.Object({ reasoning_tokens: Int({ minimum: 0 }) }, CLOSED),
}, CLOSED);

const AssistantMessage = t.Object({
  role: t.Literal("assistant"),
  content: Nullable(t.String()),
  reasoning_content: t.Optional(Nullable(t.String({ description: "a reasoning model's thoughts (null when it did not think)" }))),
  refusal: t.Null(),
  tool_calls: t.Optional(t.Array(OutputToolCall)),
}, CLOSED);

export const ChatCompletionObject = Shape("ChatCompletion", {
  id: t.String(),
  object: t.Literal("chat.completion"),
  created: Int(),
  model: t.String(),
  choices: t.Array(t.Object({ index: t.Literal(0), message: AssistantMessage, logprobs: t.Null(), finish_reason: FinishReason }, CLOSED)),
  usage: ChatUsage,
});
export type ChatCompletionObject = Static<typeof ChatCompletionObject>;

const ChunkDelta = t.Object({
  role: t.Optional(t.Literal("assistant")),
  content: t.Optional(t.String()),
  reasoning_content: t.Optional(t.String()),
  tool_calls: t.Optional(t.Array(t.Object({ index: Int({ minimum: 0 }), ...OutputToolCall.properties }, CLOSED))),
}, CLOSED);
type ChunkDelta = Static<typeof ChunkDelta>;

export const ChatCompletionChunkObject = Shape("ChatCompletionChunk", {
  id: t.String(),
  object: t.Literal("chat.completion.chunk"),
  created: Int(),
  model: t.String(),
  choices: t.Array(t.Object({ index: t.Literal(0), delta: ChunkDelta, logprobs: t.Null(), finish_reason: Nullable(FinishReason) }, CLOSED), {
    description: "empty on the closing usage chunk (stream_options.include_usage)",
  }),
  usage: t.Optional(ChatUsage),
});
export type ChatCompletionChunkObject = Static<typeof ChatCompletionChunkObject>;

/** Call ids are derived from the record id, so a replay renders the same ids. */
const callId = (id: string, i: number) => `call_${id.replace(/^[a-z]+[_-]/, "")}_${i}`;

const toolCallsOf = (id: string, calls: ParsedOutput["calls"]): Static<typeof OutputToolCall>[] =>
  calls.map((c, i) => ({ id: callId(id, i), type: "function" as const, function: { name: c.name, arguments: c.arguments } }));

export function chatUsage(result: GenerationResult, gen: Generation | undefined): Static<typeof ChatUsage> {
  return {
    prompt_tokens: result.usage.inputTokens,
    completion_tokens: result.usage.outputTokens,
    total_tokens: result.usage.inputTokens + result.usage.outputTokens,
    prompt_tokens_details: { cached_tokens: result.usage.cachedTokens },
    completion_tokens_details: { reasoning_tokens: reasoningTokens(result.tokens, gen) },
  };
}

export function renderChatCompletion(id: string, created: number, model: string, result: GenerationResult, gen?: Generation): ChatCompletionObject {
  const out = chatOutput(result.text, gen);
  const message: Static<typeof AssistantMessage> = { role: "assistant", content: out.calls.length && !out.text ? null : out.text, refusal: null };
  // A reasoning model's message always has the field, null when it did not reason.
  if (gen?.reasoning) message.reasoning_content = out.reasoning;
  if (out.calls.length) message.tool_calls = toolCallsOf(id, out.calls);
  return {
    id,
    object: "chat.completion",
    created,
    model,
    choices: [{
      index: 0,
      message,
      logprobs: null,
      finish_reason: out.calls.length ? "tool_calls" : "stop",
    }],
    usage: chatUsage(result, gen),
  };
}

export function chatRoutes(ctx: AppContext) {
  return new Elysia({ name: "chat" })
    .post("/v1/chat/completions", async ({ body, request, set }) => {
      const principal = principalOf(request);
      const idempotencyKey = idempotencyKeyOf(request, "chat");
      const model = requireModel(ctx, body.model);
      const generation = chatToGeneration(body, model);
      await checkConstraint(generation, { schema: "response_format.json_schema.schema", tools: "tools" }, model);
      const accepted = await accept(ctx, "chat", principal, body, model, generation, { idempotencyKey });
      const { id, createdAt } = accepted.record;
      const created = unixSeconds(createdAt);
      const chunk = (choices: ChatCompletionChunkObject["choices"], usage?: ChatCompletionChunkObject["usage"]): ChatCompletionChunkObject =>
        ({ id, object: "chat.completion.chunk", created, model: model.id, choices, ...(usage ? { usage } : {}) });
      const delta = (d: ChunkDelta, finish: Static<typeof FinishReason> | null = null) =>
        chunk([{ index: 0, delta: d, logprobs: null, finish_reason: finish }]);
      // One delta per call, whole: index, id, type, name and the full arguments.
      const sendCalls = (calls: ParsedOutput["calls"], send: (d: ChunkDelta) => void) =>
        toolCallsOf(id, calls).forEach((call, index) => send({ tool_calls: [{ index, ...call }] }));
      if (accepted.replayed) {
        set.headers[REPLAYED_HEADER] = "true";
        const result = resultOf(await settledReplay(ctx, accepted.record, request.signal));
        if (!body.stream) return renderChatCompletion(id, created, model.id, result, generation);
        // The twin's tokens are gone by now: the replayed stream carries the whole text at once.
        return sseResponse(async (sink) => {
          sink.send(delta({ role: "assistant", content: "" }));
          const out = chatOutput(result.text, generation);
          if (out.reasoning) sink.send(delta({ reasoning_content: out.reasoning }));
          if (out.text) sink.send(delta({ content: out.text }));
          sendCalls(out.calls, (d) => sink.send(delta(d)));
          sink.send(delta({}, out.calls.length ? "tool_calls" : "stop"));
          if (body.stream_options?.include_usage) sink.send(chunk([], chatUsage(result, generation)));
          sink.send("[DONE]");
        }, request.signal);
      }
      if (!body.stream) {
        const { result } = await runToEnd(ctx, accepted, { signal: outlivesClient(idempotencyKey, request.signal) });
        return renderChatCompletion(id, created, model.id, result, generation);
      }
      return sseResponse(async (sink) => {
        sink.send(delta({ role: "assistant", content: "" }));
        // Reasoning goes out as reasoning_content deltas; with tools, answer text from a call's
        // opening marker on is held back: calls go out whole.
        const reasoning = generation.reasoning ? new ReasoningStream(generation.reasoning) : null;
        const holdback = generation.toolCallFormat ? new ToolCallHoldback(generation.toolCallFormat) : null;
        const sendParts = (parts: { reasoning: string; content: string }) => {
          if (parts.reasoning) sink.send(delta({ reasoning_content: parts.reasoning }));
          const now = holdback ? holdback.push(parts.content) : parts.content;
          if (now) sink.send(delta({ content: now }));
        };
        try {
          const { result } = await runToEnd(ctx, accepted, {
            signal: outlivesClient(idempotencyKey, sink.signal),
            onDelta: (text) => sendParts(reasoning ? reasoning.push(text) : { reasoning: "", content: text }),
          });
          if (result.status === "cancelled") return;
          if (reasoning) sendParts(reasoning.finish());
          const tail = holdback ? answerOutput(holdback.rest(), generation) : { text: "", calls: [] };
          if (tail.text) sink.send(delta({ content: tail.text }));
          sendCalls(tail.calls, (d) => sink.send(delta(d)));
          sink.send(delta({}, tail.calls.length ? "tool_calls" : "stop"));
          if (body.stream_options?.include_usage) sink.send(chunk([], chatUsage(result, generation)));
          sink.send("[DONE]");
        } catch (err) {
          sink.send(toApiError(err).toJSON());
        }
      }, request.signal);
    }, {
      transform: ({ body }) => checkUnsupported("chat", body),
      body: ChatBody,
      detail: documented(
        { 200: { "application/json": ChatCompletionObject, "text/event-stream": ChatCompletionChunkObject } },
        "Create a chat completion (stream: true sends ChatCompletionChunk events, then [DONE])",
        { idempotencyHeader: IDEMPOTENCY_HEADER.chat },
      ),
    });
}
