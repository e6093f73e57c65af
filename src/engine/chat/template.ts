// Turns a conversation into the prompt text a model was trained on, by rendering the model's own
// Jinja chat template (`tokenizer.chat_template`) with `@huggingface/jinja`, with the variables
// Hugging Face transformers passes: `messages`, `tools`, `add_generation_prompt`, `bos_token`,
// `eos_token`, `raise_exception`, `strftime_now`, plus any extra keyword arguments.
//
// A model without a template (the story models used in tests) gets the plain fallback below.

import { Environment, Interpreter, Template } from "@huggingface/jinja";
import type { GGUFValue, ModelFile } from "../model/types.ts";

export interface ToolCall {
  id?: string;
  type?: "function";
  function: { name: string; arguments: string | Record<string, unknown> };
}

export type ContentPart = { type: string; text?: string; [key: string]: unknown };

/** An OpenAI-like chat message. */
export interface ChatMessage {
  role: string;
  content?: string | ContentPart[] | null;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  name?: string;
  /** An assistant turn's reasoning (Qwen3's and DeepSeek's templates read it). */
  reasoning_content?: string;
}

/** A tool in the Chat Completions shape (`{type, function: {...}}`) or the Responses shape (`{type, name, ...}`). */
export type ChatTool =
  | { type: "function"; function: { name: string; description?: string; parameters?: unknown; strict?: boolean } }
  | { type: "function"; name: string; description?: string; parameters?: unknown; strict?: boolean };

/** What rendering needs from a model: its template(s) and special token texts. */
export interface ChatTemplateInfo {
  /** The default template; absent for models without one. */
  template?: string;
  /** Named variants (GGUF `tokenizer.chat_template.NAME`), e.g. `tool_use`. */
  namedTemplates?: Record<string, string>;
  bosToken?: string;
  eosToken?: string;
}

export interface RenderOptions {
  /** End with the header of an assistant turn so the model answers. Default true. */
  addGenerationPrompt?: boolean;
  tools?: ChatTool[];
  /** Extra template variables (`enable_thinking`, `date_string`, ...), as transformers' **kwargs. */
  extra?: Record<string, unknown>;
  /** The clock `strftime_now` reads (tests pin it). Default: now. */
  now?: Date;
}

/** What to tokenize; the three fields map onto the tokenizer's `encode(text, {addBos, parseSpecial})`. */
export interface ChatPrompt {
  text: string;
  /**
   * Whether the tokenizer prepends BOS. `false` when the template already wrote the BOS text
   * (Llama 3 does), so it is not doubled; `undefined` leaves it to the model's own setting.
   */
  addBos?: boolean;
  /** Control tokens in the text (`<|im_start|>`) become single ids: true for templates, false for plain text. */
  parseSpecial: boolean;
  /** How the prompt was made, for logs and tests. */
  source: "template" | "plain";
}

/** The template failed (syntax, or the template's own `raise_exception`): a bad request, not a crash. */
export class ChatTemplateError extends Error {
  override name = "ChatTemplateError";
}

function tokenText(metadata: Map<string, GGUFValue>, key: string): string | undefined {
  const id = metadata.get(key);
  const tokens = metadata.get("tokenizer.ggml.tokens");
  if (id === undefined || !Array.isArray(tokens)) return undefined;
  const text = tokens[Number(id)];
  return typeof text === "string" ? text : undefined;
}

/** The chat template and special tokens of a model file (GGUF, or a HF directory's synthesized metadata). */
export function chatTemplateInfo(model: Pick<ModelFile, "metadata">): ChatTemplateInfo {
  const md = model.metadata;
  const template = md.get("tokenizer.chat_template");
  const namedTemplates: Record<string, string> = {};
  const prefix = "tokenizer.chat_template.";
  for (const [key, value] of md) {
    if (key.startsWith(prefix) && typeof value === "string") namedTemplates[key.slice(prefix.length)] = value;
  }
  return {
    template: typeof template === "string" && template.trim() !== "" ? template : undefined,
    namedTemplates,
    bosToken: tokenText(md, "tokenizer.ggml.bos_token_id"),
    eosToken: tokenText(md, "tokenizer.ggml.eos_token_id"),
  };
}

const isModelFile = (x: ModelFile | ChatTemplateInfo): x is ModelFile => "metadata" in x;

/** The text of a message's content: a string as is, text parts joined with "\n" (as llama.cpp does for text-only templates). */
export function contentText(content: ChatMessage["content"]): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  return content
    .filter((p) => typeof p.text === "string")
    .map((p) => p.text as string)
    .join("\n");
}

/**
 * Messages as templates expect them (transformers' dicts): content a string, tool-call arguments
 * an object (templates apply `tojson` to them), and no keys for absent fields, because
 * templates test `'tool_calls' in message`.
 */
function templateMessages(messages: ChatMessage[]): Record<string, unknown>[] {
  return messages.map((m) => {
    const out: Record<string, unknown> = { role: m.role, content: contentText(m.content) };
    if (m.tool_calls && m.tool_calls.length > 0) {
      out.tool_calls = m.tool_calls.map((c) => ({
        ...(c.id !== undefined ? { id: c.id } : {}),
        type: c.type ?? "function",
        function: { name: c.function.name, arguments: parseArguments(c.function.arguments) },
      }));
    }
    if (m.tool_call_id !== undefined) out.tool_call_id = m.tool_call_id;
    if (m.name !== undefined) out.name = m.name;
    if (m.reasoning_content !== undefined) out.reasoning_content = m.reasoning_content;
    return out;
  });
}

function parseArguments(args: string | Record<string, unknown>): unknown {
  if (typeof args !== "string") return args;
  try {
    return JSON.parse(args);
  } catch {
    return args; // not JSON: the template gets the text as written
  }
}

/** Tools in the shape transformers gives templates: `{type: "function", function: {name, description, parameters}}`. */
function templateTools(tools: ChatTool[]): Record<string, unknown>[] {
  return tools.map((t) => ("function" in t ? t : { type: "function", function: { name: t.name, description: t.description, parameters: t.parameters } }))
    .map((t) => JSON.parse(JSON.stringify(t)) as Record<string, unknown>); // drops undefined fields, as JSON would
}

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const pad = (n: number, w = 2) => String(n).padStart(w, "0");

// Python's strftime in the C locale (English names whatever the machine's locale), in UTC so a
// server's answer does not depend on where it runs.
const STRFTIME: Record<string, (d: Date) => string> = {
  Y: (d) => String(d.getUTCFullYear()),
  y: (d) => pad(d.getUTCFullYear() % 100),
  m: (d) => pad(d.getUTCMonth() + 1),
  d: (d) => pad(d.getUTCDate()),
  e: (d) => String(d.getUTCDate()).padStart(2, " "),
  B: (d) => MONTHS[d.getUTCMonth()],
  b: (d) => MONTHS[d.getUTCMonth()].slice(0, 3),
  A: (d) => DAYS[d.getUTCDay()],
  a: (d) => DAYS[d.getUTCDay()].slice(0, 3),
  H: (d) => pad(d.getUTCHours()),
  I: (d) => pad(((d.getUTCHours() + 11) % 12) + 1),
  p: (d) => (d.getUTCHours() < 12 ? "AM" : "PM"),
  M: (d) => pad(d.getUTCMinutes()),
  S: (d) => pad(d.getUTCSeconds()),
  j: (d) => pad(Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1, 3),
  "%": () => "%",
};

export function strftime(date: Date, format: string): string {
  return format.replace(/%(.)/g, (whole, c: string) => STRFTIME[c]?.(date) ?? whole);
}

// What Python Jinja2 and transformers give every template. `Template.render` would install the
// library's own `strftime_now` (local time, the machine's locale) and forbid replacing it, so
// the environment is built here.
function pythonRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error("range() arg 3 must not be zero");
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

const GLOBALS: Record<string, unknown> = {
  true: true, false: false, none: null, True: true, False: false, None: null,
  range: pythonRange,
  raise_exception: (message: unknown) => {
    throw new ChatTemplateError(`the model's chat template refused the conversation: ${String(message)}`);
  },
};

function run(template: Template, variables: Record<string, unknown>): string {
  const env = new Environment();
  for (const [name, value] of Object.entries({ ...GLOBALS, ...variables })) env.set(name, value);
  const result = new Interpreter(env).run(template.parsed);
  return String(result.value);
}

const compiled = new Map<string, Template>();

function compile(source: string): Template {
  let t = compiled.get(source);
  if (!t) {
    try {
      t = new Template(source);
    } catch (err) {
      throw new ChatTemplateError(`the model's chat template does not parse: ${(err as Error).message}`);
    }
    compiled.set(source, t);
  }
  return t;
}

/**
 * Renders a conversation into prompt text with the model's chat template, or with the plain
 * fallback (`plainPrompt`) when the model has none.
 */
export function renderChat(model: ModelFile | ChatTemplateInfo, messages: ChatMessage[], opts: RenderOptions = {}): ChatPrompt {
  const info = isModelFile(model) ? chatTemplateInfo(model) : model;
  const tools = opts.tools && opts.tools.length > 0 ? opts.tools : undefined;
  // GGUF files may carry a separate tool-use template (`tokenizer.chat_template.tool_use`).
  const source = (tools && info.namedTemplates?.tool_use) || info.template;
  if (!source) return plainPrompt(messages);

  const now = opts.now ?? new Date();
  let text: string;
  try {
    text = run(compile(source), {
      messages: templateMessages(messages),
      tools: tools ? templateTools(tools) : null,
      add_generation_prompt: opts.addGenerationPrompt ?? true,
      bos_token: info.bosToken ?? "",
      eos_token: info.eosToken ?? "",
      strftime_now: (format: string) => strftime(now, format),
      ...opts.extra,
    });
  } catch (err) {
    if (err instanceof ChatTemplateError) throw err;
    throw new ChatTemplateError(`the model's chat template failed: ${(err as Error).message}`);
  }
  const wroteBos = !!info.bosToken && text.startsWith(info.bosToken);
  return { text, addBos: wroteBos ? false : undefined, parseSpecial: true, source: "template" };
}

/**
 * The fallback for models without a chat template: the text of each message, in order, joined
 * with "\n"; roles are not written and nothing is appended for the answer. Messages with no
 * text (e.g. an assistant turn that only called tools) are skipped.
 *
 * Why: such models are plain text continuers (the test models write stories). Role labels would
 * be text they never saw in training, and the most useful behaviour is that a conversation
 * holding one user message "Once upon a time" prompts exactly like that string: BOS followed by
 * the text. Control-token text in messages is not parsed.
 */
export function plainPrompt(messages: ChatMessage[]): ChatPrompt {
  const text = messages.map((m) => contentText(m.content)).filter((t) => t !== "").join("\n");
  return { text, addBos: true, parseSpecial: false, source: "plain" };
}
