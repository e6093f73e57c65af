// Structured outputs and tool calls, the API side shared by the surfaces: the request-time
// schema check (a schema that cannot compile is a 400 naming the parameter, before anything is
// stored), and the tool-call part of a Generation.

import { GrammarCompileError, type OutputConstraint } from "../engine/grammar/constraint.ts";
import { GrammarChecker } from "../engine/grammar/checker.ts";
import type { Generation, GenerationTool } from "../generation.ts";
import { toolCallConstraint, type ToolChoice } from "../tool-calls.ts";
import type { ServedModel } from "../scheduler/models.ts";
import { invalidRequest } from "./errors.ts";
import { t, type Static } from "elysia";
import { Nullable } from "./common.ts";

/** xgrammar in a worker of its own: a schema that never finishes compiling stalls nobody. */
const checker = new GrammarChecker();

/**
 * Compiles the generation's constraint against the model's vocabulary, as the engine will, within
 * the checker's time limit; a bad schema (or one that compiles too slowly) is a 400 naming `param`.
 */
export async function checkConstraint(gen: Generation, param: { schema: string; tools: string }, model: Pick<ServedModel, "ref" | "nVocab">): Promise<void> {
  const c = gen.constraint;
  if (!c) return;
  const structure = c.type === "after_reasoning" ? c.then : c;
  try {
    await checker.check(c, { ref: model.ref, nVocab: model.nVocab });
  } catch (err) {
    if (!(err instanceof GrammarCompileError)) throw err;
    const where = structure.type === "tool_calls" ? param.tools : structure.type === "grammar" ? STRUCTURED_OUTPUTS : param.schema;
    const grammar = structure.type === "grammar";
    throw invalidRequest(`Invalid ${grammar ? "grammar" : "schema"} for '${where}': ${err.message}`, where, grammar ? "invalid_grammar" : "invalid_schema");
  }
}

/**
 * The tool fields of a Generation: the model's call layout (parsed back out of the output
 * unless tool_choice is "none") and, for "required" or a named tool, the constraint that forces
 * the calls. A named tool that was not declared is a 400 naming `choiceParam`.
 */
export function toolFields(
  model: ServedModel, tools: GenerationTool[], choice: ToolChoice, parallel: boolean, choiceParam: string,
): Pick<Generation, "toolCallFormat"> & { constraint: OutputConstraint | null } {
  if (typeof choice === "object" && !tools.some((t) => t.name === choice.name)) {
    throw invalidRequest(`tool_choice names '${choice.name}', which is not one of the request's tools.`, choiceParam, "unknown_tool");
  }
  if (choice !== "none" && choice !== "auto" && tools.length === 0) {
    throw invalidRequest(`tool_choice '${typeof choice === "string" ? choice : choice.name}' needs at least one tool in 'tools'.`, choiceParam);
  }
  const parsed = tools.length > 0 && choice !== "none";
  return {
    toolCallFormat: parsed ? model.toolCallFormat : null,
    constraint: parsed ? toolCallConstraint(tools, choice, model.toolCallFormat, parallel) : null,
  };
}

/**
 * `structured_outputs` (an extension, named as vLLM names it; the OpenAI SDKs send it through
 * `extra_body`): the whole output matches a regular expression or an EBNF grammar, as
 * llama.cpp's and vLLM's servers offer.
 */
export const StructuredOutputs = t.Object({
  regex: t.Optional(t.String({ minLength: 1 })),
  grammar: t.Optional(t.String({ minLength: 1 })),
}, { description: "{regex} or {grammar}" });

const STRUCTURED_OUTPUTS = "structured_outputs";

/** The grammar constraint `structured_outputs` asks for; it excludes every other constraint on the request. */
export function grammarConstraint(so: Static<typeof StructuredOutputs> | null | undefined, other: OutputConstraint | null): OutputConstraint | null {
  if (!so) return other;
  const given = (["regex", "grammar"] as const).filter((k) => so[k] !== undefined);
  if (given.length !== 1) throw invalidRequest("'structured_outputs' takes exactly one of 'regex' or 'grammar'.", STRUCTURED_OUTPUTS, "invalid_value");
  if (other) {
    const what = other.type === "tool_calls" ? "a forced tool call (tool_choice)" : "a response format";
    throw invalidRequest(`'structured_outputs' cannot be combined with ${what}: the output can follow one constraint.`, STRUCTURED_OUTPUTS, "invalid_value");
  }
  return given[0] === "regex"
    ? { type: "grammar", syntax: "regex", definition: so.regex! }
    : { type: "grammar", syntax: "ebnf", definition: so.grammar! };
}
