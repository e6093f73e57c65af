// The parameters each surface refuses, as data (API.md, "Rejected with 400"). One interpreter
// below reads these tables; routes call `checkUnsupported(surface, body)` before schema
// validation so the client learns the parameter's name and, for deprecated ones, what to use.
//
// A parameter sent as `null` counts as absent on every surface: API.md requires it on Chat
// Completions, and no client is helped by a 400 for a value that means "default".

import { invalidRequest, type ApiError } from "./errors.ts";

export type Surface = "responses" | "chat" | "messages";

/** How a rule recognises a refused value. */
export type Refusal =
  /** any non-null value */
  | { present: true }
  /** one of these values (for strings in arrays, e.g. a tool `type`) */
  | { values: readonly unknown[] }
  /** anything except these values (compared structurally) */
  | { only: readonly unknown[] };

export interface UnsupportedRule {
  /** Dotted path; `[]` walks every element of an array: `tools[].type`. */
  path: string;
  refuse: Refusal;
  /** `{value}` is replaced by the offending value. */
  message: string;
}

const SERVER_SIDE_TOOLS = [
  "web_search", "web_search_preview", "file_search", "code_interpreter", "computer_use",
  "computer_use_preview", "mcp", "image_generation", "shell", "local_shell", "apply_patch",
] as const;

const present = { present: true } as const;

export const UNSUPPORTED: Record<Surface, readonly UnsupportedRule[]> = {
  responses: [
    { path: "instructions", refuse: present, message: "'instructions' is not supported: send the system prompt as an `input` message with role 'system' or 'developer'." },
    { path: "previous_response_id", refuse: present, message: "'previous_response_id' is not supported: the API is stateless, replay the earlier output items in `input`." },
    { path: "conversation", refuse: present, message: "'conversation' is not supported: the API is stateless, replay the earlier items in `input`." },
    { path: "prompt", refuse: present, message: "Prompt templates ('prompt') are not supported: send the full `input`." },
    { path: "parallel_tool_calls", refuse: present, message: "'parallel_tool_calls' is not supported on /v1/responses." },
    { path: "tools[].type", refuse: { values: SERVER_SIDE_TOOLS }, message: "Server-side tool '{value}' is not supported: only 'function' and 'custom' tools are." },
    { path: "text.format.type", refuse: { values: ["json_object"] }, message: "text.format type 'json_object' is not supported: use {\"type\": \"json_schema\", \"name\", \"schema\", \"strict\"}." },
    { path: "input[].content[].type", refuse: { values: ["input_audio", "input_file"] }, message: "Input part type '{value}' is not supported: audio and file inputs are not accepted." },
    { path: "include[]", refuse: { values: ["reasoning.encrypted_content", "web_search_call.action.sources", "code_interpreter_call.outputs", "computer_call_output.output.image_url", "file_search_call.results"] }, message: "include value '{value}' is not supported: only 'message.output_text.logprobs' is." },
    { path: "store", refuse: { only: [true] }, message: "'store' may only be true: every request is stored." },
    { path: "truncation", refuse: { only: ["disabled"] }, message: "'truncation' may only be 'disabled'." },
    { path: "stream", refuse: { only: [false] }, message: "Streaming is only available on /v1/chat/completions; on /v1/responses 'stream' may only be false." },
    { path: "service_tier", refuse: { only: ["auto"] }, message: "'service_tier' may only be 'auto': use metadata.completion_window to choose latency or efficiency." },
  ],
  chat: [
    { path: "frequency_penalty", refuse: present, message: "'frequency_penalty' is not supported." },
    { path: "presence_penalty", refuse: present, message: "'presence_penalty' is not supported." },
    { path: "logit_bias", refuse: present, message: "'logit_bias' is not supported." },
    { path: "stop", refuse: present, message: "'stop' (stop sequences) is not supported." },
    { path: "seed", refuse: present, message: "'seed' is not supported." },
    { path: "top_logprobs", refuse: present, message: "'top_logprobs' is not supported." },
    { path: "logprobs", refuse: present, message: "'logprobs' is not supported on /v1/chat/completions: use /v1/responses with include: [\"message.output_text.logprobs\"]." },
    { path: "verbosity", refuse: present, message: "'verbosity' is not supported." },
    { path: "audio", refuse: present, message: "'audio' output is not supported." },
    { path: "prediction", refuse: present, message: "'prediction' (predicted outputs) is not supported." },
    { path: "web_search_options", refuse: present, message: "'web_search_options' is not supported: there is no server-side web search." },
    { path: "max_tokens", refuse: present, message: "'max_tokens' is deprecated and not supported: use 'max_completion_tokens'." },
    { path: "functions", refuse: present, message: "'functions' is deprecated and not supported: use 'tools'." },
    { path: "function_call", refuse: present, message: "'function_call' is deprecated and not supported: use 'tool_choice'." },
    { path: "messages[].content[].type", refuse: { values: ["input_audio", "file"] }, message: "Content part type '{value}' is not supported: audio and file inputs are not accepted." },
    { path: "n", refuse: { only: [1] }, message: "'n' may only be 1: one choice per request." },
    { path: "modalities", refuse: { only: [["text"]] }, message: "'modalities' may only be [\"text\"]." },
    { path: "store", refuse: { only: [true] }, message: "'store' may only be true: every request is stored." },
    { path: "service_tier", refuse: { only: ["auto"] }, message: "'service_tier' may only be 'auto': use metadata.completion_window to choose latency or efficiency." },
  ],
  messages: [
    { path: "system", refuse: present, message: "'system' is not supported: put the instructions in the first user message." },
    { path: "thinking", refuse: present, message: "'thinking' is not supported." },
    { path: "stop_sequences", refuse: present, message: "'stop_sequences' is not supported." },
    { path: "top_k", refuse: present, message: "'top_k' is not supported: use 'temperature' or 'top_p'." },
    { path: "service_tier", refuse: present, message: "'service_tier' is not supported: use metadata.completion_window to choose latency or efficiency." },
    { path: "inference_geo", refuse: present, message: "'inference_geo' is not supported." },
    { path: "stream", refuse: { only: [false] }, message: "Streaming is only available on /v1/chat/completions; on /v1/messages 'stream' may only be false." },
    { path: "messages[].content[].type", refuse: { values: ["document", "tool_use", "tool_result"] }, message: "Content block type '{value}' is not supported." },
  ],
};

/** Every (concrete path, value) reached by a path pattern; `[]` fans out over arrays. */
function* walk(value: unknown, segments: string[], at: string): Generator<{ param: string; value: unknown }> {
  if (segments.length === 0) {
    yield { param: at, value };
    return;
  }
  const [head, ...rest] = segments;
  const many = head.endsWith("[]");
  const key = many ? head.slice(0, -2) : head;
  if (value === null || typeof value !== "object" || Array.isArray(value)) return;
  const child = (value as Record<string, unknown>)[key];
  const here = at ? `${at}.${key}` : key;
  if (!many) {
    yield* walk(child, rest, here);
    return;
  }
  if (!Array.isArray(child)) return;
  for (let i = 0; i < child.length; i++) yield* walk(child[i], rest, `${here}[${i}]`);
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function refused(refuse: Refusal, value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if ("present" in refuse) return true;
  if ("values" in refuse) return refuse.values.some((v) => same(v, value));
  return !refuse.only.some((v) => same(v, value));
}

/** The first refused parameter of `body` for `surface`, or null when none. */
export function findUnsupported(surface: Surface, body: unknown): ApiError | null {
  for (const rule of UNSUPPORTED[surface]) {
    for (const hit of walk(body, rule.path.split("."), "")) {
      if (refused(rule.refuse, hit.value)) {
        const shown = typeof hit.value === "string" ? hit.value : JSON.stringify(hit.value);
        return invalidRequest(rule.message.replaceAll("{value}", shown), hit.param, "unsupported_parameter");
      }
    }
  }
  return null;
}

/**
 * Throws the first refused parameter; then drops top-level refused parameters sent as null, so
 * the schema (which does not list them) does not see them as unknown arguments.
 */
export function checkUnsupported(surface: Surface, body: unknown): void {
  const err = findUnsupported(surface, body);
  if (err) throw err;
  if (body === null || typeof body !== "object" || Array.isArray(body)) return;
  const fields = body as Record<string, unknown>;
  for (const rule of UNSUPPORTED[surface]) {
    if (/^\w+$/.test(rule.path) && fields[rule.path] === null) delete fields[rule.path];
  }
}
