// Request bodies: read no further than the route's limit, parsed as JSON, and refused when nested
// deeper than any request of this API needs. A body nested 100,000 deep parses, but every
// recursive walk after it (schema validation, canonical hashing, the grammar compiler) would blow
// the stack: the depth is checked on the text, before anything is parsed, stored or reserved.

import { ApiError, invalidRequest } from "./errors.ts";

/** Deepest nesting of objects and arrays a body may have; a 10-level JSON schema inside a batch item is about 30. */
export const MAX_BODY_DEPTH = 128;

const tooLarge = (limit: number) =>
  new ApiError("request_too_large", `The request body is larger than the limit of ${limit} bytes.`, { code: "request_too_large" });

/** A declared Content-Length over the limit is refused before the body is read. */
export function checkDeclaredLength(headers: Headers, limit: number): void {
  if (Number(headers.get("content-length") ?? "0") > limit) throw tooLarge(limit);
}

/** The body as text, read no further than `limit` bytes (a chunked body has no length to check first). */
async function bodyText(request: Request, limit: number): Promise<string> {
  if (!request.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      void reader.cancel();
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size).toString("utf8");
}

const QUOTE = 0x22, BACKSLASH = 0x5c, OPEN_OBJECT = 0x7b, CLOSE_OBJECT = 0x7d, OPEN_ARRAY = 0x5b, CLOSE_ARRAY = 0x5d, COMMA = 0x2c;

/** Where the text first nests deeper than `max`, as a character offset; -1 when it never does. */
export function overDepthAt(text: string, max: number): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > max) return i;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
  return -1;
}

/** One open container on the way to an offset: an object's current key or an array's index. */
type Level = { kind: "object"; key: string | null; expectKey: boolean } | { kind: "array"; index: number };

/**
 * The parameter path (`input[0].content`) leading to `offset`, its first `shown` levels. Only
 * run on a body already refused, so it may be slower than `overDepthAt`.
 */
export function pathAt(text: string, offset: number, shown = 4): string {
  const levels: Level[] = [];
  for (let i = 0; i < offset; i++) {
    const c = text.charCodeAt(i);
    const top = levels[levels.length - 1];
    if (c === QUOTE) {
      const start = i;
      for (i++; i < text.length && text.charCodeAt(i) !== QUOTE; i++) if (text.charCodeAt(i) === BACKSLASH) i++;
      if (top?.kind === "object" && top.expectKey) {
        try {
          top.key = JSON.parse(text.slice(start, i + 1));
        } catch {
          top.key = text.slice(start + 1, i);
        }
        top.expectKey = false;
      }
    } else if (c === OPEN_OBJECT) {
      levels.push({ kind: "object", key: null, expectKey: true });
    } else if (c === OPEN_ARRAY) {
      levels.push({ kind: "array", index: 0 });
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      levels.pop();
    } else if (c === COMMA && top) {
      if (top.kind === "object") top.expectKey = true;
      else top.index++;
    }
  }
  // The root is the body itself, not a parameter; the container opening at `offset` is the last one.
  let path = "";
  for (const level of levels.slice(0, shown)) {
    if (level.kind === "array") path += `[${level.index}]`;
    else if (level.key !== null) path += path === "" ? level.key : `.${level.key}`;
  }
  return path;
}

/**
 * The request's JSON body: undefined when empty (so the schema reports "must be a JSON object"),
 * a 413 past `limit`, a 400 when it is not JSON or nests deeper than MAX_BODY_DEPTH.
 */
export async function readJsonBody(request: Request, limit: number): Promise<unknown> {
  const text = await bodyText(request, limit);
  if (text.trim() === "") return undefined;
  const at = overDepthAt(text, MAX_BODY_DEPTH);
  if (at >= 0) {
    const param = pathAt(text, at) || null;
    throw invalidRequest(`The request body nests objects and arrays deeper than ${MAX_BODY_DEPTH} levels${param ? ` (in '${param}')` : ""}.`, param, "nesting_too_deep");
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalidRequest(`The request body is not valid JSON: ${(err as Error).message}.`, null, "invalid_json");
  }
}
