// From an API-level output constraint to the arguments of one of xgrammar's compilers.

/** A function the model may call: its arguments must satisfy `parameters` (any object if omitted). */
export interface ToolSpec {
  name: string;
  parameters?: unknown;
  /** Only the listed parameters (default true); false follows JSON Schema's additionalProperties. */
  strict?: boolean;
}

/**
 * How a chat template writes one tool call: the text before the arguments (`{name}` stands for
 * the tool's name, JSON-escaped), the arguments object, then `end`. Several calls are joined by
 * `separator`.
 */
export interface ToolCallFormat {
  begin: string;
  end: string;
  separator: string;
}

/** Tool-call layouts of common chat templates, for the API to pick from by model. */
export const TOOL_CALL_FORMATS = {
  /** Hermes / Qwen2.5 / Qwen3: `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`. */
  hermes: { begin: '<tool_call>\n{"name": "{name}", "arguments": ', end: "}\n</tool_call>", separator: "\n" },
  /** Llama 3.x JSON tool calls: `{"name": ..., "parameters": {...}}` (Meta's template makes one call a turn: pass parallel: false). */
  llama3_json: { begin: '{"name": "{name}", "parameters": ', end: "}", separator: "; " },
} as const satisfies Record<string, ToolCallFormat>;

/**
 * What the output must be: JSON valid against a schema, any JSON object, or (tool_choice
 * "required" or a named function) one or more calls of the given tools in the template's format.
 */
export type OutputConstraint =
  | { type: "json_schema"; schema: unknown; strict?: boolean }
  | { type: "json_object" }
  | { type: "tool_calls"; tools: ToolSpec[]; format: ToolCallFormat; parallel?: boolean }
  /** The whole output matches a regular expression, or a grammar in xgrammar's EBNF (GBNF) with a `root` rule. */
  | { type: "grammar"; syntax: GrammarSyntax; definition: string }
  /**
   * Free reasoning first, then `then`: the block (opened by `open` unless the prompt opened it)
   * runs to `close`, and the structure applies to the answer after it.
   */
  | { type: "after_reasoning"; open?: string; close: string; then: OutputConstraint };

export type GrammarSyntax = "regex" | "ebnf";

/** The constraint cannot be compiled: the message says what in it is unsupported or invalid. */
export class GrammarCompileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GrammarCompileError";
  }
}

/** Arguments for one of xgrammar's compilers, plus the cache key. */
export type SchemaPlan =
  | {
    kind: "json_schema";
    key: string;
    schema: string;
    /** No properties or items beyond those the schema lists (xgrammar's strict mode). */
    strictMode: boolean;
  }
  | {
    kind: "tool_calls";
    key: string;
    /** One per tool: the call's fixed text around its arguments, whose schema is `schema`. */
    calls: { begin: string; end: string; schema: string; strictMode: boolean }[];
    separator: string;
    /** Several calls allowed (else exactly one). */
    parallel: boolean;
  }
  | { kind: "grammar"; key: string; syntax: GrammarSyntax; definition: string }
  | { kind: "after_reasoning"; key: string; open: string; close: string; then: SchemaPlan };

// JSON is written on one line with Python's json.dumps separators (`, ` and `: `), as OpenAI's
// structured outputs look. Free whitespace was tried first: stories15M, greedy, then fills every
// gap with newlines up to any bound given (24 per gap made a 4-field object exceed 160 tokens).
export const JSON_LAYOUT = { anyWhitespace: false } as const;

/** Larger schemas are refused before reaching the compiler (its time and memory grow with them). */
const MAX_SCHEMA_CHARS = 256 * 1024;

// json_object: any object. Not strict, so that the object may hold any properties.
const ANY_OBJECT = JSON.stringify({ type: "object" });

const describe = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "an array" : typeof v);

function schemaText(where: string, schema: unknown): string {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    throw new GrammarCompileError(`${where} must be a JSON object, got ${describe(schema)}`);
  }
  let text: string;
  try {
    text = JSON.stringify(schema);
  } catch (e) {
    throw new GrammarCompileError(`${where} is not serializable as JSON (${(e as Error).message})`);
  }
  if (text.length > MAX_SCHEMA_CHARS) throw new GrammarCompileError(`${where} is ${text.length} characters; the limit is ${MAX_SCHEMA_CHARS}`);
  return text;
}

function toolCalls(c: Record<string, unknown>) {
  const { tools, format } = c;
  if (!Array.isArray(tools) || tools.length === 0) throw new GrammarCompileError("tool_calls: tools must be a non-empty array");
  const f = format as Partial<ToolCallFormat> | undefined;
  if (typeof f !== "object" || f === null || typeof f.begin !== "string" || typeof f.end !== "string" || typeof f.separator !== "string") {
    throw new GrammarCompileError("tool_calls: format must have string begin, end and separator");
  }
  if (!f.begin.includes("{name}")) throw new GrammarCompileError("tool_calls: format.begin must contain {name}");
  if (c.parallel !== undefined && typeof c.parallel !== "boolean") throw new GrammarCompileError("tool_calls: parallel must be a boolean");
  const seen = new Set<string>();
  const calls = tools.map((t: unknown, i: number) => {
    const tool = t as Partial<ToolSpec> | null;
    if (typeof tool !== "object" || tool === null || typeof tool.name !== "string" || tool.name === "") {
      throw new GrammarCompileError(`tool_calls: tools[${i}].name must be a non-empty string`);
    }
    if (seen.has(tool.name)) throw new GrammarCompileError(`tool_calls: tool name ${JSON.stringify(tool.name)} appears twice`);
    seen.add(tool.name);
    if (tool.strict !== undefined && typeof tool.strict !== "boolean") throw new GrammarCompileError(`tool_calls: tools[${i}].strict must be a boolean`);
    // No parameters schema: any object, whatever `strict` says.
    const schema = tool.parameters === undefined ? ANY_OBJECT : schemaText(`tool_calls: tools[${i}].parameters`, tool.parameters);
    return {
      begin: f.begin!.replaceAll("{name}", JSON.stringify(tool.name).slice(1, -1)),
      end: f.end!,
      schema,
      strictMode: tool.parameters !== undefined && tool.strict !== false,
    };
  });
  return { calls, separator: f.separator, parallel: c.parallel !== false };
}

/** Grammars are bounded like schemas. */
const MAX_GRAMMAR_CHARS = 64 * 1024;
const GRAMMAR_SYNTAXES: GrammarSyntax[] = ["regex", "ebnf"];

const PLANNERS: Record<string, (c: Record<string, unknown>) => SchemaPlan> = {
  after_reasoning: (c) => {
    const open = c.open ?? "";
    if (typeof open !== "string" || typeof c.close !== "string" || c.close === "") throw new GrammarCompileError("after_reasoning: open and close must be strings, close non-empty");
    const then = planConstraint(c.then as OutputConstraint);
    if (then.kind === "after_reasoning") throw new GrammarCompileError("after_reasoning: cannot nest");
    return { kind: "after_reasoning", key: `after_reasoning:${JSON.stringify([open, c.close])}:${then.key}`, open, close: c.close, then };
  },
  grammar: (c) => {
    const syntax = c.syntax as GrammarSyntax;
    if (!GRAMMAR_SYNTAXES.includes(syntax)) throw new GrammarCompileError(`grammar: syntax must be one of ${GRAMMAR_SYNTAXES.join(", ")}`);
    if (typeof c.definition !== "string" || c.definition === "") throw new GrammarCompileError("grammar: definition must be a non-empty string");
    if (c.definition.length > MAX_GRAMMAR_CHARS) throw new GrammarCompileError(`grammar: definition is ${c.definition.length} characters; the limit is ${MAX_GRAMMAR_CHARS}`);
    return { kind: "grammar", key: `grammar:${syntax}:${c.definition}`, syntax, definition: c.definition };
  },
  json_object: () => ({ kind: "json_schema", key: "json_object", schema: ANY_OBJECT, strictMode: false }),
  tool_calls: (c) => {
    const plan = toolCalls(c);
    return { kind: "tool_calls", key: `tool_calls:${JSON.stringify(plan)}`, ...plan };
  },
  json_schema: (c) => {
    if (typeof c.schema === "boolean") throw new GrammarCompileError("json_schema: a boolean schema constrains nothing; give a schema object");
    const text = schemaText("json_schema: schema", c.schema);
    if (c.strict !== undefined && typeof c.strict !== "boolean") throw new GrammarCompileError("json_schema: strict must be a boolean");
    // strict (the default here) follows OpenAI's strict structured outputs: only the listed
    // properties. strict: false keeps JSON Schema's own rule (unlisted properties allowed unless
    // additionalProperties says otherwise); the schema is enforced either way.
    const strictMode = c.strict !== false;
    return { kind: "json_schema", key: `json_schema:${strictMode ? "strict" : "loose"}:${text}`, schema: text, strictMode };
  },
};

export function planConstraint(c: OutputConstraint): SchemaPlan {
  if (typeof c !== "object" || c === null) throw new GrammarCompileError("output constraint must be an object");
  const type = (c as { type?: unknown }).type;
  const planner = typeof type === "string" && Object.hasOwn(PLANNERS, type) ? PLANNERS[type] : undefined;
  if (!planner) throw new GrammarCompileError(`unsupported output format type ${JSON.stringify(type)} (supported: ${Object.keys(PLANNERS).join(", ")})`);
  return planner(c as Record<string, unknown>);
}
