// POST /v1/messages: the Anthropic Messages shape (beta). Errors still use the OpenAI envelope;
// stop_reason is always "end_turn"; tools and tool_choice are accepted and not shown to the model.

import { Elysia, t, type Static } from "elysia";
import type { AppContext } from "./context.ts";
import { CLOSED, Int, Nullable, Shape, checkMetadata, resolveWindow } from "./common.ts";
import { checkUnsupported } from "./unsupported.ts";
import { accept, outlivesClient, requireModel, resultOf, runToEnd, settledReplay } from "./inference.ts";
import { IDEMPOTENCY_HEADER, REPLAYED_HEADER, idempotencyKeyOf } from "./idempotency.ts";
import { invalidRequest } from "./errors.ts";
import { principalOf } from "./principal.ts";
import type { Generation, GenerationResult } from "../generation.ts";
import type { ServedModel } from "../scheduler/models.ts";
import { documented } from "./openapi.ts";
import { checkConstraint } from "./structured.ts";
import { afterReasoning, outputParts, reasoningFields } from "./reasoning.ts";

const Block = t.Union([
  t.Object({ type: t.Literal("text"), text: t.String() }),
  t.Object({ type: t.Literal("image"), source: t.Any() }),
], { description: "a content block {type: 'text', text} or {type: 'image', source}" });

const Message = t.Object({
  role: t.Union([t.Literal("user"), t.Literal("assistant")], { description: "'user' or 'assistant'" }),
  content: t.Union([t.String(), t.Array(Block)], { description: "a string or an array of content blocks" }),
});

export const MessagesBody = t.Object({
  model: t.String({ minLength: 1 }),
  max_tokens: Int({ minimum: 1 }),
  messages: t.Array(Message, { minItems: 1 }),
  temperature: t.Optional(Nullable(t.Number({ minimum: 0, maximum: 1 }))),
  top_p: t.Optional(Nullable(t.Number({ minimum: 0, maximum: 1 }))),
  // The Anthropic SDK sends `metadata: {user_id}`, possibly null.
  metadata: t.Optional(Nullable(t.Record(t.String(), Nullable(t.String()), { description: "an object of string values" }))),
  tools: t.Optional(Nullable(t.Array(t.Any()))),
  tool_choice: t.Optional(Nullable(t.Any())),
  output_config: t.Optional(Nullable(t.Object({
    format: t.Optional(Nullable(t.Object({ type: t.Literal("json_schema"), schema: t.Record(t.String(), t.Any()) }, { description: "{type: 'json_schema', schema}" }))),
  }))),
  stream: t.Optional(Nullable(t.Boolean())),
});
export type MessagesRequest = Static<typeof MessagesBody>;

export function messagesToGeneration(body: MessagesRequest, model: ServedModel): Generation {
  // `thinking` is refused here, so the template's own default decides.
  const reasoning = reasoningFields(model, null);
  const strings: Record<string, string> = {};
  for (const [k, v] of Object.entries(body.metadata ?? {})) if (v !== null) strings[k] = v;
  const metadata = checkMetadata(strings);
  const messages = body.messages.map((m, i) => ({
    role: m.role,
    content: typeof m.content === "string" ? m.content : m.content.map((b, j) => {
      if (b.type === "text") return b.text;
      throw invalidRequest(`The model '${model.id}' does not accept image input.`, `messages[${i}].content[${j}]`, "image_input_not_supported");
    }).join(""),
  }));
  return {
    model: model.id,
    input: { kind: "messages", messages },
    maxOutputTokens: body.max_tokens,
    temperature: body.temperature ?? 1,
    topP: body.top_p ?? 1,
    logprobs: false,
    tools: [],
    constraint: afterReasoning(body.output_config?.format ? { type: "json_schema", schema: body.output_config.format.schema } : null, reasoning.reasoning),
    ...reasoning,
    metadata,
    window: resolveWindow(metadata, model.windows),
    user: metadata.user_id ?? null,
  };
}

// What the route answers with: Anthropic's Message object.

const ContentBlockOut = t.Union([
  t.Object({ type: t.Literal("thinking"), thinking: t.String(), signature: t.Literal("", { description: "no signature: the thoughts are not encrypted" }) }, CLOSED),
  t.Object({ type: t.Literal("text"), text: t.String() }, CLOSED),
]);

export const MessageObject = Shape("Message", {
  id: t.String(),
  type: t.Literal("message"),
  role: t.Literal("assistant"),
  content: t.Array(ContentBlockOut, { description: "a reasoning model's thinking block first, then the text" }),
  model: t.String(),
  stop_reason: t.Literal("end_turn"),
  stop_sequence: t.Null(),
  usage: t.Object({ input_tokens: Int({ minimum: 0 }), output_tokens: Int({ minimum: 0 }) }, CLOSED),
});
export type MessageObject = Static<typeof MessageObject>;

export function renderMessage(id: string, model: string, result: GenerationResult, gen: Generation): MessageObject {
  const parts = outputParts(result.text, gen);
  // A reasoning model's thoughts come back as Anthropic's thinking block (there is no signature to give).
  const thinking: Static<typeof ContentBlockOut>[] = parts.reasoning === null ? [] : [{ type: "thinking", thinking: parts.reasoning, signature: "" }];
  return {
    id,
    type: "message",
    role: "assistant",
    content: [...thinking, { type: "text", text: parts.content }],
    model,
    stop_reason: "end_turn",
    stop_sequence: null,
    usage: { input_tokens: result.usage.inputTokens, output_tokens: result.usage.outputTokens },
  };
}

export function messagesRoutes(ctx: AppContext) {
  return new Elysia({ name: "messages" })
    .post("/v1/messages", async ({ body, request, set }) => {
      const principal = principalOf(request);
      const idempotencyKey = idempotencyKeyOf(request, "messages");
      const model = requireModel(ctx, body.model);
      const generation = messagesToGeneration(body, model);
      await checkConstraint(generation, { schema: "output_config.format.schema", tools: "tools" }, model);
      const accepted = await accept(ctx, "messages", principal, body, model, generation, { idempotencyKey });
      if (accepted.replayed) {
        set.headers[REPLAYED_HEADER] = "true";
        return renderMessage(accepted.record.id, model.id, resultOf(await settledReplay(ctx, accepted.record, request.signal)), accepted.record.generation);
      }
      const { result } = await runToEnd(ctx, accepted, { signal: outlivesClient(idempotencyKey, request.signal) });
      return renderMessage(accepted.record.id, model.id, result, generation);
    }, {
      transform: ({ body }) => checkUnsupported("messages", body),
      body: MessagesBody,
      detail: documented({ 200: MessageObject }, "Create a message (Anthropic Messages)", { idempotencyHeader: IDEMPOTENCY_HEADER.messages }),
    });
}
