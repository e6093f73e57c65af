// Turns a TypeBox schema failure (raised by Elysia's body validation) into a 400 in the OpenAI
// envelope that names the parameter and says what was expected, e.g.
// `Invalid value for 'temperature': 3. Expected a number from 0 to 2, or null.`

import type { TSchema } from "@sinclair/typebox";
import { Kind } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { ValueErrorType } from "@sinclair/typebox/errors";
import { invalidRequest, type ApiError } from "./errors.ts";

/** `/messages/0/content` -> `messages[0].content` (the OpenAI SDKs' way of naming a parameter). */
export function paramOf(pointer: string): string | null {
  if (!pointer || pointer === "/") return null;
  let out = "";
  for (const raw of pointer.split("/").slice(1)) {
    const seg = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    out += /^\d+$/.test(seg) ? `[${seg}]` : out ? `.${seg}` : seg;
  }
  return out;
}

function range(s: TSchema, unit: string): string {
  const lo = s.minimum ?? (s.exclusiveMinimum !== undefined ? `more than ${s.exclusiveMinimum}` : undefined);
  const hi = s.maximum ?? (s.exclusiveMaximum !== undefined ? `less than ${s.exclusiveMaximum}` : undefined);
  if (s.minimum !== undefined && s.maximum !== undefined) return `${unit} from ${s.minimum} to ${s.maximum}`;
  if (lo !== undefined) return typeof lo === "number" ? `${unit} >= ${lo}` : `${unit} ${lo}`;
  if (hi !== undefined) return typeof hi === "number" ? `${unit} <= ${hi}` : `${unit} ${hi}`;
  return unit;
}

/** A short English description of what a schema accepts. */
export function describe(s: TSchema): string {
  if (s.description) return s.description;
  const kind = s[Kind] as string | undefined;
  switch (kind) {
    case "Union":
      return (s.anyOf as TSchema[]).map(describe).join(", or ");
    case "Literal":
      return JSON.stringify(s.const);
    case "Null":
      return "null";
    case "Number":
      return range(s, "a number");
    case "Integer":
      return range(s, "an integer");
    case "Boolean":
      return "a boolean";
    case "String": {
      const parts = [s.minLength === 1 ? "a non-empty string" : "a string"];
      if (s.maxLength !== undefined) parts.push(`of at most ${s.maxLength} characters`);
      return parts.join(" ");
    }
    case "Array": {
      const n = s.minItems ? ` of at least ${s.minItems} item${s.minItems > 1 ? "s" : ""}` : "";
      return `an array${n}`;
    }
    case "Object":
    case "Record":
      return "an object";
    default:
      return "a valid value";
  }
}

const shown = (v: unknown) => {
  const text = typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

interface ValueErrorLike {
  type?: number;
  path: string;
  value: unknown;
  schema: TSchema;
  message: string;
}

/** The JSON kind a schema accepts, to tell which member of a union a value was meant for. */
function jsonKind(s: TSchema): string {
  switch (s[Kind]) {
    case "Object":
    case "Record":
      return "object";
    case "Array":
      return "array";
    case "Integer":
      return "number";
    case "Literal":
      return typeof s.const;
    default:
      return String(s[Kind]).toLowerCase();
  }
}

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/**
 * A union reports only "Expected union value" at its own path. When the value plainly meant one
 * member (the only one of its JSON kind, or the object whose literal `type` it carries), report
 * that member's own first error instead: `metadata.k`, not `metadata`.
 */
function refine(err: ValueErrorLike): ValueErrorLike {
  let e = err;
  for (let depth = 0; depth < 8 && e.schema[Kind] === "Union"; depth++) {
    let members = (e.schema.anyOf as TSchema[]).filter((m) => jsonKind(m) === kindOf(e.value));
    const tag = kindOf(e.value) === "object" ? (e.value as Record<string, unknown>).type : undefined;
    if (members.length > 1 && tag !== undefined) {
      members = members.filter((m) => m.properties?.type?.const === tag);
    }
    if (members.length !== 1) break;
    const inner = Value.Errors(members[0], e.value).First();
    if (!inner) break;
    e = { ...inner, path: e.path + inner.path };
  }
  return e;
}

/** The envelope error for one TypeBox value error. */
export function schemaError(raw: ValueErrorLike | undefined): ApiError {
  if (!raw) return invalidRequest("The request body is invalid.");
  const err = refine(raw);
  const param = paramOf(err.path);
  if (param === null) {
    return invalidRequest("The request body must be a JSON object.", null, "invalid_body");
  }
  if (err.type === ValueErrorType.ObjectAdditionalProperties) {
    return invalidRequest(`Unrecognized request argument supplied: '${param}'.`, param, "unknown_parameter");
  }
  if (err.value === undefined) {
    return invalidRequest(`Missing required parameter: '${param}'.`, param, "missing_required_parameter");
  }
  return invalidRequest(`Invalid value for '${param}': ${shown(err.value)}. Expected ${describe(err.schema)}.`, param, "invalid_value");
}
