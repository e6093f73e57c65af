// From an API-level output constraint to the arguments of xgrammar's JSON-schema compiler.

/** What the output must be: JSON valid against a schema, or any JSON object. */
export type OutputConstraint =
  | { type: "json_schema"; schema: unknown; strict?: boolean }
  | { type: "json_object" };

/** The constraint cannot be compiled: the message says what in it is unsupported or invalid. */
export class GrammarCompileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GrammarCompileError";
  }
}

/** Arguments for xgrammar's compileJSONSchema / Grammar.fromJSONSchema, plus the cache key. */
export interface SchemaPlan {
  key: string;
  schema: string;
  /** No properties or items beyond those the schema lists (xgrammar's strict mode). */
  strictMode: boolean;
}

// Whitespace between JSON tokens is free (models indent as they were trained to), but a run of
// it is bounded: a small model that prefers newlines would otherwise spin until max tokens.
export const JSON_LAYOUT = { anyWhitespace: true, indent: undefined, maxWhitespace: 24 } as const;

/** Larger schemas are refused before reaching the compiler (its time and memory grow with them). */
const MAX_SCHEMA_CHARS = 256 * 1024;

// json_object: any object. Not strict, so that the object may hold any properties.
const ANY_OBJECT = JSON.stringify({ type: "object" });

const PLANNERS: Record<string, (c: Record<string, unknown>) => SchemaPlan> = {
  json_object: () => ({ key: "json_object", schema: ANY_OBJECT, strictMode: false }),
  json_schema: (c) => {
    const schema = c.schema;
    if (typeof schema === "boolean") throw new GrammarCompileError("json_schema: a boolean schema constrains nothing; give a schema object");
    if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
      throw new GrammarCompileError(`json_schema: schema must be a JSON object, got ${schema === null ? "null" : Array.isArray(schema) ? "an array" : typeof schema}`);
    }
    if (c.strict !== undefined && typeof c.strict !== "boolean") throw new GrammarCompileError("json_schema: strict must be a boolean");
    let text: string;
    try {
      text = JSON.stringify(schema);
    } catch (e) {
      throw new GrammarCompileError(`json_schema: schema is not serializable as JSON (${(e as Error).message})`);
    }
    if (text.length > MAX_SCHEMA_CHARS) throw new GrammarCompileError(`json_schema: schema is ${text.length} characters; the limit is ${MAX_SCHEMA_CHARS}`);
    // strict (the default here) follows OpenAI's strict structured outputs: only the listed
    // properties. strict: false keeps JSON Schema's own rule (unlisted properties allowed unless
    // additionalProperties says otherwise); the schema is enforced either way.
    const strictMode = c.strict !== false;
    return { key: `json_schema:${strictMode ? "strict" : "loose"}:${text}`, schema: text, strictMode };
  },
};

export function planConstraint(c: OutputConstraint): SchemaPlan {
  if (typeof c !== "object" || c === null) throw new GrammarCompileError("output constraint must be an object");
  const type = (c as { type?: unknown }).type;
  const planner = typeof type === "string" && Object.hasOwn(PLANNERS, type) ? PLANNERS[type] : undefined;
  if (!planner) throw new GrammarCompileError(`unsupported output format type ${JSON.stringify(type)} (supported: ${Object.keys(PLANNERS).join(", ")})`);
  return planner(c as Record<string, unknown>);
}
