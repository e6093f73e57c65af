// Reasoning ("thinking") in model output: which chat templates make a model write it, whether a
// rendered prompt leaves the model inside a reasoning block already, and taking the reasoning
// out of the generated text, whole or as it streams. Only a leading block counts: Qwen3,
// DeepSeek-R1 and SmolLM3 think first and answer after; a tag later in the answer is text.

import type { OutputToken } from "./generation.ts";

export interface ReasoningSyntax {
  open: string;
  close: string;
}

export const REASONING_SYNTAX = {
  think: { open: "<think>", close: "</think>" },
} as const satisfies Record<string, ReasoningSyntax>;

export type ReasoningFormatName = keyof typeof REASONING_SYNTAX;

/** How a generation's output is read for reasoning: the layout, and whether the prompt already opened the block. */
export interface ReasoningMode {
  format: ReasoningFormatName;
  /** The prompt ends inside an open block (DeepSeek-R1's template writes `<think>\n` itself). */
  startsInside: boolean;
  /**
   * The model thinks before it answers: false when the prompt ends with a closed, empty block
   * (Qwen3 with thinking off). Absent in records stored before it existed: taken as true.
   */
  thinks?: boolean;
}

/** The reasoning layout a chat template writes, or null when its model does not reason. */
export function reasoningFormatFor(template: string | undefined): ReasoningFormatName | null {
  if (!template) return null;
  const found = Object.entries(REASONING_SYNTAX).find(([, s]) => template.includes(s.open) && template.includes(s.close));
  return (found?.[0] as ReasoningFormatName | undefined) ?? null;
}

/** Whether prompt text ends with a closed block, so that the model answers at once. */
export function closesReasoning(prompt: string, format: ReasoningFormatName): boolean {
  return prompt.trimEnd().endsWith(REASONING_SYNTAX[format].close);
}

/** Whether prompt text ends inside an open reasoning block. */
export function opensReasoning(prompt: string, format: ReasoningFormatName): boolean {
  const { open, close } = REASONING_SYNTAX[format];
  const at = prompt.lastIndexOf(open);
  return at !== -1 && prompt.lastIndexOf(close) < at;
}

export interface SplitOutput {
  /** The reasoning, trimmed; null when the output has none (or only whitespace). */
  reasoning: string | null;
  /** The answer: what follows the block, leading whitespace dropped; the whole text when there is no block. */
  content: string;
  /** Characters of the text the block takes, closing tag included (0 without one). */
  reasoningChars: number;
}

const WHITESPACE = /^\s*/;

/** Splits generated text into reasoning and answer. */
export function splitReasoning(text: string, mode: ReasoningMode | null | undefined): SplitOutput {
  if (!mode) return { reasoning: null, content: text, reasoningChars: 0 };
  const { open, close } = REASONING_SYNTAX[mode.format];
  let start = 0;
  if (!mode.startsInside) {
    const lead = text.match(WHITESPACE)![0].length;
    if (!text.startsWith(open, lead)) return { reasoning: null, content: text, reasoningChars: 0 };
    start = lead + open.length;
  }
  const end = text.indexOf(close, start);
  if (end === -1) return { reasoning: text.slice(start).trim() || null, content: "", reasoningChars: text.length };
  const after = text.slice(end + close.length);
  return {
    reasoning: text.slice(start, end).trim() || null,
    content: after.slice(after.match(WHITESPACE)![0].length),
    reasoningChars: end + close.length,
  };
}

/** Output tokens spent on the reasoning block (the closing tag's tokens included). */
export function reasoningTokenCount(tokens: OutputToken[], mode: ReasoningMode | null | undefined): number {
  if (!mode) return 0;
  const chars = splitReasoning(tokens.map((t) => t.text).join(""), mode).reasoningChars;
  let seen = 0;
  let count = 0;
  for (const tok of tokens) {
    if (seen >= chars) break;
    seen += tok.text.length;
    count++;
  }
  return count;
}

/** What a chunk of streamed text adds to each part. */
export interface ReasoningDelta {
  reasoning: string;
  content: string;
}

/** Longest suffix of `text` that is a proper prefix of `tag` (text that may still become the tag). */
function partialTagAt(text: string, tag: string): number {
  for (let k = Math.min(tag.length - 1, text.length); k > 0; k--) {
    if (tag.startsWith(text.slice(text.length - k))) return text.length - k;
  }
  return text.length;
}

/**
 * Streaming: splits text as it arrives, sending what is certain and holding back what is not (a
 * possibly partial tag, whitespace that may turn out to be the trimmed end of the reasoning).
 * The parts sent add up to `splitReasoning` of the whole text.
 */
export class ReasoningStream {
  private state: "before" | "reasoning" | "content";
  private pending = "";
  private sentReasoning = false;
  private sentContent = false;
  private readonly syntax: ReasoningSyntax;

  constructor(mode: ReasoningMode) {
    this.syntax = REASONING_SYNTAX[mode.format];
    this.state = mode.startsInside ? "reasoning" : "before";
  }

  push(text: string): ReasoningDelta {
    const out: ReasoningDelta = { reasoning: "", content: "" };
    this.pending += text;
    this.advance(out);
    return out;
  }

  /** The end of the output: whatever was held back. */
  finish(): ReasoningDelta {
    const out: ReasoningDelta = { reasoning: "", content: "" };
    if (this.state === "before") out.content = this.pending;
    else if (this.state === "reasoning") out.reasoning = this.reasoningPiece(this.pending.trimEnd());
    else out.content = this.contentPiece(this.pending);
    this.pending = "";
    return out;
  }

  private advance(out: ReasoningDelta): void {
    const { open, close } = this.syntax;
    if (this.state === "before") {
      const lead = this.pending.match(WHITESPACE)![0].length;
      const rest = this.pending.slice(lead);
      if (rest.startsWith(open)) {
        this.state = "reasoning";
        this.pending = rest.slice(open.length);
      } else if (open.startsWith(rest)) {
        return; // still undecided
      } else {
        this.state = "content";
        this.sentContent = true; // without a block the text goes out as it is
        out.content += this.pending;
        this.pending = "";
        return;
      }
    }
    if (this.state === "reasoning") {
      const end = this.pending.indexOf(close);
      if (end === -1) {
        const safe = partialTagAt(this.pending, close);
        const body = this.pending.slice(0, safe);
        const kept = body.trimEnd(); // trailing whitespace may be the end of the block
        out.reasoning += this.reasoningPiece(kept);
        this.pending = this.pending.slice(kept.length);
        return;
      }
      out.reasoning += this.reasoningPiece(this.pending.slice(0, end).trimEnd());
      this.state = "content";
      this.pending = this.pending.slice(end + close.length);
    }
    out.content += this.contentPiece(this.pending);
    this.pending = "";
  }

  private reasoningPiece(text: string): string {
    const piece = this.sentReasoning ? text : text.trimStart();
    if (piece) this.sentReasoning = true;
    else if (!this.sentReasoning) return "";
    return piece;
  }

  private contentPiece(text: string): string {
    const piece = this.sentContent ? text : text.trimStart();
    if (piece) this.sentContent = true;
    return piece;
  }
}
