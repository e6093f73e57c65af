// Tool calls in model output: which layout a model's chat template uses, the constraint that
// forces calls (tool_choice "required" or a named function), and parsing calls back out of the
// generated text. Layouts are data; one scanner reads them all. A call that does not parse (bad
// JSON, unknown tool, missing name) stays in the text: the client sees what the model wrote.

import { TOOL_CALL_FORMATS, type OutputConstraint, type ToolSpec } from "./engine/grammar/constraint.ts";
import type { GenerationTool } from "./generation.ts";

export type ToolCallFormatName = keyof typeof TOOL_CALL_FORMATS;

export interface ToolCallSyntax {
  /** Text that opens a call: streaming holds output back from here on. */
  open: string;
  /** Text that closes a call (null: the call is one bare JSON object). */
  close: string | null;
  /** The JSON key holding the arguments object. */
  argsKey: string;
  /** Text allowed between two calls (besides whitespace). */
  separator: string;
}

export const TOOL_CALL_SYNTAX: Record<ToolCallFormatName, ToolCallSyntax> = {
  hermes: { open: "<tool_call>", close: "</tool_call>", argsKey: "arguments", separator: "" },
  llama3_json: { open: '{"name"', close: null, argsKey: "parameters", separator: ";" },
};

/** Chat template text that identifies a layout; the first match wins, hermes is the default. */
const TEMPLATE_HINTS: { format: ToolCallFormatName; marker: string }[] = [
  { format: "hermes", marker: "<tool_call>" },
  { format: "llama3_json", marker: "<|start_header_id|>" },
];

/** The tool-call layout of a chat template (hermes for ChatML-style templates and for models without one). */
export function toolCallFormatFor(template: string | undefined): ToolCallFormatName {
  if (!template) return "hermes";
  return TEMPLATE_HINTS.find((h) => template.includes(h.marker))?.format ?? "hermes";
}

export type ToolChoice = "none" | "auto" | "required" | { name: string };

/**
 * A custom tool takes free text, not an object. Templates and the call layouts only know
 * function calls, so the model is shown (and held to) a function of one string, `input`; the
 * Responses surface hands it back as a `custom_tool_call` with that string.
 */
export const CUSTOM_TOOL_PARAMETERS = {
  type: "object",
  properties: { input: { type: "string", description: "The tool's input, as free text." } },
  required: ["input"],
  additionalProperties: false,
} as const;

/** The parameters schema a tool is shown and forced with (undefined: any object). */
export function toolParameters(t: GenerationTool): unknown {
  return t.type === "custom" ? CUSTOM_TOOL_PARAMETERS : t.parameters;
}

/** A custom tool call's text input from its arguments JSON (`{"input": "..."}`), else the JSON itself. */
export function customToolInput(args: string): string {
  try {
    const v = JSON.parse(args);
    if (typeof v?.input === "string") return v.input;
  } catch {
    // arguments are always JSON here; keep what the model wrote otherwise
  }
  return args;
}

/**
 * The decoding constraint for a tool choice: "required" forces one or more calls of any tool,
 * a named tool exactly one call of that tool; "auto" and "none" leave the model free.
 */
export function toolCallConstraint(
  tools: GenerationTool[], choice: ToolChoice, format: ToolCallFormatName, parallel: boolean,
): OutputConstraint | null {
  if (choice === "none" || choice === "auto" || tools.length === 0) return null;
  const chosen = choice === "required" ? tools : tools.filter((t) => t.name === choice.name);
  const specs: ToolSpec[] = chosen.map((t) => {
    const parameters = toolParameters(t);
    return { name: t.name, ...(parameters !== undefined ? { parameters } : {}) };
  });
  // Meta's Llama 3 template makes one call a turn.
  const many = parallel && choice === "required" && format !== "llama3_json";
  return { type: "tool_calls", tools: specs, format: TOOL_CALL_FORMATS[format], parallel: many };
}

export interface ParsedToolCall {
  name: string;
  /** The arguments object as JSON text. */
  arguments: string;
}

export interface ParsedOutput {
  /** The output with the calls taken out (trimmed). */
  text: string;
  calls: ParsedToolCall[];
}

/** End index (exclusive) of the JSON object starting at `start`, or -1 when it never closes. */
function objectEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return i + 1;
  }
  return -1;
}

/** A call object `{"name": ..., argsKey: {...}}`, or null when it is not one. */
function callOf(json: string, syntax: ToolCallSyntax, known: Set<string> | null): ParsedToolCall | null {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const { name, [syntax.argsKey]: args } = value as Record<string, unknown>;
  if (typeof name !== "string" || name === "" || (known && !known.has(name))) return null;
  if (args !== undefined && (typeof args !== "object" || args === null || Array.isArray(args))) return null;
  return { name, arguments: JSON.stringify(args ?? {}) };
}

/**
 * Takes the tool calls out of `text`. `tools` (names) limits calls to declared tools; text
 * around and between calls is kept.
 */
export function parseToolCalls(text: string, format: ToolCallFormatName, tools?: Iterable<string>): ParsedOutput {
  const syntax = TOOL_CALL_SYNTAX[format];
  const known = tools ? new Set(tools) : null;
  const calls: ParsedToolCall[] = [];
  let kept = "";
  let from = 0;
  for (let at = text.indexOf(syntax.open); at !== -1; at = text.indexOf(syntax.open, from)) {
    let bodyStart = at;
    let bodyEnd: number;
    let next: number;
    if (syntax.close) {
      bodyStart = at + syntax.open.length;
      bodyEnd = text.indexOf(syntax.close, bodyStart);
      next = bodyEnd + syntax.close.length;
    } else {
      bodyEnd = objectEnd(text, at);
      next = bodyEnd;
    }
    const call = bodyEnd === -1 ? null : callOf(text.slice(bodyStart, bodyEnd).trim(), syntax, known);
    if (!call) {
      // Not a call: keep it as text and look further on.
      kept += text.slice(from, at + syntax.open.length);
      from = at + syntax.open.length;
      continue;
    }
    calls.push(call);
    kept += text.slice(from, at);
    from = next;
    if (syntax.separator) {
      const rest = text.slice(from);
      const sep = rest.match(new RegExp(`^\\s*${syntax.separator.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
      if (sep && rest.slice(sep[0].length).trimStart().startsWith(syntax.open)) from += sep[0].length;
    }
  }
  kept += text.slice(from);
  return { text: calls.length ? kept.trim() : text, calls };
}

/**
 * Streaming: passes text through until a call may be starting, then holds the rest back (calls
 * are emitted whole, at the end). `push` returns the text safe to send now.
 */
export class ToolCallHoldback {
  private sent = 0;
  private all = "";
  private holding = false;
  private readonly open: string;

  constructor(format: ToolCallFormatName) {
    this.open = TOOL_CALL_SYNTAX[format].open;
  }

  push(delta: string): string {
    this.all += delta;
    if (this.holding) return "";
    const at = this.all.indexOf(this.open, Math.max(0, this.sent - this.open.length));
    let safe: number;
    if (at !== -1) {
      this.holding = true;
      safe = at;
    } else {
      // Keep back a tail that could be the start of the opening marker.
      safe = this.all.length;
      for (let k = Math.min(this.open.length - 1, this.all.length); k > 0; k--) {
        if (this.open.startsWith(this.all.slice(this.all.length - k))) { safe = this.all.length - k; break; }
      }
    }
    const out = this.all.slice(this.sent, Math.max(safe, this.sent));
    this.sent = Math.max(safe, this.sent);
    return out;
  }

  /** Everything not yet sent (the held-back tail). */
  rest(): string {
    return this.all.slice(this.sent);
  }

  get text(): string {
    return this.all;
  }
}
