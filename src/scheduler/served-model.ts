// A served model's host side, whatever hosts it (the server's HTTP thread, the browser's engine
// worker): its tokenizer and chat template, read from the model file's metadata, which turn a
// conversation into prompt ids and say how the output carries reasoning and tool calls.

import type { Generation, GenerationMessage, CompletionWindow } from "../generation.ts";
import type { ModelFile } from "../engine/model/types.ts";
import type { Tokenizer } from "../engine/tokenizer/types.ts";
import { createTokenizer } from "../engine/tokenizer/index.ts";
import { utf8Length } from "../engine/tokenizer/vocab.ts";
import { toolCallFormatFor, toolParameters, type ToolCallFormatName } from "../tool-calls.ts";
import { chatTemplateInfo, renderChat, ChatTemplateError, type ChatMessage, type ChatPrompt, type ChatTool, type ChatTemplateInfo } from "../engine/chat/template.ts";
import { closesReasoning, opensReasoning, reasoningFormatFor, type ReasoningMode } from "../reasoning.ts";

export interface ServedModel {
  id: string;
  ref: string;
  /** Unix seconds when it was loaded. */
  created: number;
  arch: string;
  nCtx: number;
  /** Logits per step (the output matrix's rows; at least the tokenizer's vocabulary). */
  nVocab: number;
  /** Sequences the engine runs at once for it. */
  maxRunning: number;
  windows: CompletionWindow[];
  /** Whether image parts are accepted (no vision model is supported yet). */
  multimodal: boolean;
  tokenizer: Tokenizer;
  /** How the model's chat template writes tool calls (what forced calls look like, what is parsed back). */
  toolCallFormat: ToolCallFormatName;
  /**
   * Prompt for a conversation: the model's chat template, or the plain fallback. `thinking` sets
   * the template's `enable_thinking` (null: the template's default).
   */
  renderChat(messages: GenerationMessage[], tools: Generation["tools"], thinking?: boolean | null): ChatPrompt;
  /** How its output carries reasoning with thinking on, off or at the default; null for a model that does not reason. */
  reasoningMode(thinking: boolean | null): ReasoningMode | null;
}

/** Why a prompt cannot be built or run; the API turns these into a 400. */
export class PromptError extends Error {
  override name = "PromptError";
}

export class PromptTooLong extends PromptError {
  /** `atLeast`: counted from the text's length without tokenizing it, a lower bound. */
  constructor(readonly promptTokens: number, readonly nCtx: number, atLeast = false) {
    super(`The prompt is ${atLeast ? "at least " : ""}${promptTokens} tokens long; the model's context holds ${nCtx} tokens including the output.`);
  }
}

const longestTokens = new WeakMap<Tokenizer, number>();

/**
 * The most UTF-8 bytes of text one token can stand for, over-counted from the stored token texts
 * (`Ġ`, `▁` and `<0x0A>` are longer than the byte they stand for), so that bytes / this is a
 * lower bound on any text's token count.
 */
export function longestTokenBytes(tokenizer: Tokenizer): number {
  let longest = longestTokens.get(tokenizer);
  if (longest === undefined) {
    longest = 1;
    for (let id = 0; id < tokenizer.vocabSize; id++) longest = Math.max(longest, utf8Length(tokenizer.tokenText(id)));
    longestTokens.set(tokenizer, longest);
  }
  return longest;
}

type PromptInput = Pick<Generation, "input" | "tools" | "thinking" | "maxOutputTokens">;

/** The rendered prompt of a generation and its UTF-8 length, refused when that length alone proves it cannot fit. */
export function renderPrompt(model: ServedModel, gen: PromptInput): ChatPrompt & { bytes: number } {
  let prompt: ChatPrompt;
  try {
    // A string input is one user message, as the hosted API treats it: through the model's
    // template when it has one, else the plain fallback (the text after BOS, as before).
    const messages = gen.input.kind === "text" ? [{ role: "user" as const, content: gen.input.text }] : gen.input.messages;
    prompt = model.renderChat(messages, gen.tools, gen.thinking);
  } catch (err) {
    if (err instanceof ChatTemplateError) throw new PromptError(err.message);
    throw err;
  }
  // A text that cannot fit is refused from its length alone: tokenizing megabytes takes seconds.
  const bytes = utf8Length(prompt.text);
  const atLeast = Math.ceil(bytes / longestTokenBytes(model.tokenizer));
  if (atLeast >= model.nCtx) throw new PromptTooLong(atLeast, model.nCtx, true);
  return { ...prompt, bytes };
}

/** The output budget left by `promptIds`; throws PromptTooLong when nothing fits. */
export function fitPrompt(model: ServedModel, gen: PromptInput, promptIds: number[]): { promptIds: number[]; maxTokens: number } {
  const room = model.nCtx - promptIds.length;
  if (room < 1) throw new PromptTooLong(promptIds.length, model.nCtx);
  return { promptIds, maxTokens: Math.min(gen.maxOutputTokens ?? room, room) };
}

/** Prompt ids and output budget for a generation, tokenized on this thread. */
export function preparePrompt(model: ServedModel, gen: PromptInput): { promptIds: number[]; maxTokens: number } {
  const prompt = renderPrompt(model, gen);
  return fitPrompt(model, gen, model.tokenizer.encode(prompt.text, { addBos: prompt.addBos, parseSpecial: prompt.parseSpecial }));
}

function toChatMessage(m: GenerationMessage): ChatMessage {
  return {
    role: m.role,
    content: m.content,
    ...(m.toolCalls ? { tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: "function" as const, function: { name: c.name, arguments: c.arguments } })) } : {}),
    ...(m.toolCallId !== undefined ? { tool_call_id: m.toolCallId } : {}),
    ...(m.reasoning !== undefined ? { reasoning_content: m.reasoning } : {}),
  };
}

const thinkingVariables = (thinking: boolean | null | undefined) => (thinking == null ? undefined : { enable_thinking: thinking });

/**
 * A template that writes reasoning tags: whether its generation prompt leaves the model inside
 * an open block (DeepSeek-R1 writes `<think>\n` itself; Qwen3 lets the model open it), found by
 * rendering a one-message conversation once per thinking setting.
 */
function reasoningModes(template: ChatTemplateInfo): (thinking: boolean | null) => ReasoningMode | null {
  const format = reasoningFormatFor(template.template);
  if (!format) return () => null;
  const modes = new Map<boolean | null, ReasoningMode>();
  return (thinking) => {
    let mode = modes.get(thinking);
    if (!mode) {
      let startsInside = false;
      let thinks = true;
      try {
        const probe = renderChat(template, [{ role: "user", content: "Hi" }], { extra: thinkingVariables(thinking) });
        startsInside = opensReasoning(probe.text, format);
        thinks = !closesReasoning(probe.text, format);
      } catch {
        // a template that refuses the probe refuses real conversations too, with its message
      }
      mode = { format, startsInside, thinks };
      modes.set(thinking, mode);
    }
    return mode;
  };
}

/** Templates only know function tools; a custom tool is shown as a function taking free text. */
function toChatTool(t: Generation["tools"][number]): ChatTool {
  return { type: "function", name: t.name, description: t.description, parameters: toolParameters(t) };
}


/** What a served model is known by: its id, where its file is, and the windows it offers. */
export interface ServedModelConfig {
  id: string;
  ref: string;
  windows?: CompletionWindow[];
}

/** The host side of a model, from its open file (only the metadata is read). */
export function servedModel(
  file: Pick<ModelFile, "metadata">,
  cfg: ServedModelConfig,
  info: { arch: string; nCtx: number; nVocab?: number; maxRunning?: number },
): ServedModel {
  const tokenizer = createTokenizer(file);
  const template = chatTemplateInfo(file);
  return {
    id: cfg.id,
    ref: cfg.ref,
    created: Math.floor(Date.now() / 1000),
    arch: info.arch,
    nCtx: info.nCtx,
    nVocab: info.nVocab ?? tokenizer.vocabSize,
    maxRunning: info.maxRunning ?? 1,
    windows: cfg.windows ?? ["asap", "standard"],
    multimodal: false,
    tokenizer,
    toolCallFormat: toolCallFormatFor(template.template),
    renderChat: (messages, tools, thinking) =>
      renderChat(template, messages.map(toChatMessage), { tools: tools.map(toChatTool), extra: thinkingVariables(thinking) }),
    reasoningMode: reasoningModes(template),
  };
}
