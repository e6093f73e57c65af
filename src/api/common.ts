// Schema pieces and checks every surface shares: nullable numbers, metadata limits, completion
// windows, and the text of message content.

import { t, type TSchema } from "elysia";
import { Type, type IntegerOptions, type TLiteral, type TProperties } from "@sinclair/typebox";
import { invalidRequest } from "./errors.ts";
import type { CompletionWindow } from "../generation.ts";

export const Nullable = <T extends TSchema>(s: T) => t.Union([s, t.Null()]);

export const Temperature2 = Nullable(t.Number({ minimum: 0, maximum: 2 }));
export const Unit = Nullable(t.Number({ minimum: 0, maximum: 1 }));
/** Plain TypeBox integers: Elysia's `t.Integer` also accepts numeric strings, which a JSON API should not. */
export const Int = (opts: IntegerOptions = {}) => Type.Integer(opts);
export const PositiveInt = Nullable(Int({ minimum: 1 }));
export const User = t.String({ maxLength: 256 });

/** One of these strings, typed as their union. */
export const Literals = <const V extends readonly [string, ...string[]]>(...values: V) =>
  t.Union(values.map((v) => t.Literal(v)) as TLiteral<V[number]>[]);

/** An object schema's option: no fields beyond the listed ones (the shapes the server sends). */
export const CLOSED = { additionalProperties: false } as const;

/** Where a generation stands (a Response's status, a batch item's). */
export const GenerationStatus = Literals("queued", "in_progress", "completed", "incomplete", "failed", "cancelled");

/**
 * What the server answers with: exactly these fields (a response schema says what is sent, and
 * types the function that renders it). The title names it in the OpenAPI document's components.
 */
export const Shape = <T extends TProperties>(title: string, properties: T) =>
  t.Object(properties, { title, ...CLOSED });

/** Metadata: shape by schema, limits by `checkMetadata` (TypeBox records cannot bound key length). */
export const Metadata = Nullable(t.Record(t.String(), t.String(), { description: "an object of string values" }));

export const METADATA_LIMITS = { pairs: 16, keyLength: 64, valueLength: 512 } as const;

export const RESERVED_METADATA = ["completion_window", "completion_webhook", "webhook_token"] as const;

export function checkMetadata(metadata: Record<string, string> | null | undefined): Record<string, string> {
  if (!metadata) return {};
  const entries = Object.entries(metadata);
  if (entries.length > METADATA_LIMITS.pairs) {
    throw invalidRequest(`'metadata' has ${entries.length} pairs; at most ${METADATA_LIMITS.pairs} are allowed.`, "metadata");
  }
  for (const [k, v] of entries) {
    if (k.length > METADATA_LIMITS.keyLength) {
      throw invalidRequest(`metadata key '${k.slice(0, 20)}…' is ${k.length} characters; at most ${METADATA_LIMITS.keyLength} are allowed.`, `metadata.${k}`);
    }
    if (v.length > METADATA_LIMITS.valueLength) {
      throw invalidRequest(`metadata['${k}'] is ${v.length} characters; at most ${METADATA_LIMITS.valueLength} are allowed.`, `metadata.${k}`);
    }
  }
  return metadata;
}

/** The window a request runs in: the one it asked for if the model offers it, else the default. */
export function resolveWindow(metadata: Record<string, string>, windows: readonly CompletionWindow[]): CompletionWindow {
  const asked = metadata.completion_window;
  if (asked === undefined) return windows.includes("standard") ? "standard" : "asap";
  if (!(windows as readonly string[]).includes(asked)) {
    throw invalidRequest(
      `metadata.completion_window '${asked}' is not available for this model; its windows are: ${windows.map((w) => `'${w}'`).join(", ")}.`,
      "metadata.completion_window",
    );
  }
  return asked as CompletionWindow;
}

/** Seconds since the epoch, as the OpenAI objects carry them. */
export const unixSeconds = (ms: number) => Math.floor(ms / 1000);
