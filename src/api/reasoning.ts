// Reasoning on every surface: the effort a request names becomes the template's thinking switch,
// and the output's reasoning block is taken out of the answer (reasoning_content on Chat, a
// reasoning item on Responses, a thinking block on Messages), its tokens counted in usage.
//
// A model whose chat template writes no reasoning tags accepts the parameters and ignores
// them: its output is all answer and reasoning_tokens is 0.

import { t } from "elysia";
import type { Generation, OutputToken } from "../generation.ts";
import type { ServedModel } from "../scheduler/models.ts";
import { REASONING_SYNTAX, reasoningTokenCount, splitReasoning, type ReasoningMode, type SplitOutput } from "../reasoning.ts";
import type { OutputConstraint } from "../engine/grammar/constraint.ts";

export const ReasoningEffort = t.Union(
  [t.Literal("none"), t.Literal("minimal"), t.Literal("low"), t.Literal("medium"), t.Literal("high"), t.Literal("xhigh")],
  { description: "one of none, minimal, low, medium, high, xhigh" },
);
export type ReasoningEffort = typeof ReasoningEffort.static;

/** Efforts that switch thinking off through the template (`enable_thinking: false`); the others switch it on. */
const THINKING: Record<ReasoningEffort, boolean> = {
  none: false, minimal: false, low: true, medium: true, high: true, xhigh: true,
};

/** The Generation's reasoning fields for a request's effort (absent or null: the template's default). */
export function reasoningFields(model: ServedModel, effort: ReasoningEffort | null | undefined): Pick<Generation, "thinking" | "reasoning"> {
  const thinking = effort == null ? null : THINKING[effort];
  return { thinking, reasoning: model.reasoningMode(thinking) };
}

/**
 * A response format or forced tool call on a model that thinks: the reasoning block stays free
 * and the structure holds the answer after it (as vLLM applies structured outputs to reasoning
 * models). With thinking off, the structure starts at the first token.
 */
export function afterReasoning(c: OutputConstraint | null, mode: ReasoningMode | null | undefined): OutputConstraint | null {
  if (!c || !mode || mode.thinks === false) return c;
  const { open, close } = REASONING_SYNTAX[mode.format];
  return { type: "after_reasoning", ...(mode.startsInside ? {} : { open }), close, then: c };
}

/** A finished output split into reasoning and answer. */
export function outputParts(text: string, gen: Pick<Generation, "reasoning"> | undefined): SplitOutput {
  return splitReasoning(text, gen?.reasoning);
}

/** Output tokens the reasoning took, for usage's reasoning_tokens. */
export function reasoningTokens(tokens: OutputToken[], gen: Pick<Generation, "reasoning"> | undefined): number {
  return reasoningTokenCount(tokens, gen?.reasoning);
}
