// The one neutral description of an inference request. Every surface (Responses, Chat
// Completions, Messages, later batch items) translates its request into a `Generation` and
// renders a `GenerationResult` back; the store, scheduler and engine see only these types.
// Both are plain JSON so a record can be stored and run again after a restart.

import type { FinishReason } from "./engine/types.ts";
import type { OutputConstraint } from "./engine/grammar/constraint.ts";
import type { ToolCallFormatName } from "./tool-calls.ts";
import type { ReasoningMode } from "./reasoning.ts";

export type Role = "system" | "developer" | "user" | "assistant" | "tool";

export interface GenerationMessage {
  role: Role;
  content: string;
  /** Tool calls an assistant turn made (replayed history). */
  toolCalls?: { id: string; name: string; arguments: string }[];
  /** For role "tool": the call this output answers. */
  toolCallId?: string;
  /** An assistant turn's reasoning, replayed (the template decides whether the model sees it). */
  reasoning?: string;
}

export interface GenerationTool {
  type: "function" | "custom";
  name: string;
  description?: string;
  parameters?: unknown;
}

/** What the model is fed. */
export type GenerationInput =
  /** A Responses string `input`: one user message (the text after BOS on a model without a template). */
  | { kind: "text"; text: string }
  /** Rendered with the model's chat template (or the plain fallback). */
  | { kind: "messages"; messages: GenerationMessage[] };

export type CompletionWindow = "asap" | "standard";

export interface Generation {
  model: string;
  input: GenerationInput;
  /** null: up to the model's context. */
  maxOutputTokens: number | null;
  /** 0 is greedy. */
  temperature: number;
  topP: number;
  /** Return one logprob per output token. */
  logprobs: boolean;
  /** With `logprobs`, also the most likely tokens at each step (0 to 20; absent in older records: 0). */
  topLogprobs?: number;
  tools: GenerationTool[];
  /**
   * Structure enforced while decoding (structured outputs, forced tool calls); null or absent:
   * free text. Plain JSON, so a stored record runs again after a restart.
   */
  constraint?: OutputConstraint | null;
  /** The model's tool-call layout, when tool calls are parsed out of the output (tools given, tool_choice not "none"). */
  toolCallFormat?: ToolCallFormatName | null;
  /**
   * The chat template's thinking switch (`enable_thinking`): false for reasoning effort none or
   * minimal, true for the other efforts, null or absent to leave the template's default.
   */
  thinking?: boolean | null;
  /** How reasoning is read out of the output (null or absent: the model does not reason, all is answer). */
  reasoning?: ReasoningMode | null;
  metadata: Record<string, string>;
  window: CompletionWindow;
  user: string | null;
  /** Requests sharing one keep their cached prompt pages longer (absent in records stored before it existed). */
  promptCacheKey?: string | null;
}

export type GenerationStatus = "queued" | "in_progress" | "completed" | "incomplete" | "failed" | "cancelled";

export interface OutputToken {
  id: number;
  /** The text this token added to the output (empty while a multi-byte character is incomplete). */
  text: string;
  logprob?: number;
  /** The most likely tokens at this step, most likely first, each with its own text. */
  top?: { id: number; text: string; logprob: number }[];
}

export interface GenerationUsage {
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
}

export interface GenerationResult {
  status: Extract<GenerationStatus, "completed" | "incomplete" | "cancelled">;
  text: string;
  tokens: OutputToken[];
  finishReason: FinishReason;
  usage: GenerationUsage;
  /** Milliseconds from start of the run to the first output token (null when none was produced). */
  timeToFirstTokenMs: number | null;
  decodeMs: number;
}

/** Called as output grows: `delta` is the new text (never a partial UTF-8 character). */
export type OnDelta = (delta: string, token: OutputToken) => void;
