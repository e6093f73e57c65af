// A seeded fuzz run against the real server on stories15M: a few hundred requests across the
// three surfaces, each a valid body with one to three hostile changes (wrong types, huge and
// odd values, deep nesting, hostile JSON schemas, broken UTF-8 and broken JSON). The server
// must answer every one with a non-5xx status, every error in the OpenAI envelope, stay
// healthy, and still serve a valid structured-output request at the end.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { MODEL_ID, envelope, startTestServer, type TestServer } from "./e2e-harness.ts";
import { Rng } from "./support/random-gguf.ts";

setDefaultTimeout(300_000);

const SEED = 20261207;
const REQUESTS = 400;

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ replicas: 1 });
});
afterAll(async () => {
  await server?.close();
});

type Surface = "responses" | "chat" | "messages";
const PATH: Record<Surface, string> = { responses: "/v1/responses", chat: "/v1/chat/completions", messages: "/v1/messages" };

/** A valid body per surface; output kept to a token or two so the accepted ones stay quick. */
const BASE: Record<Surface, () => Record<string, unknown>> = {
  responses: () => ({ model: MODEL_ID, input: [{ role: "user", content: "Once upon a time" }], max_output_tokens: 2, temperature: 0 }),
  chat: () => ({ model: MODEL_ID, messages: [{ role: "user", content: "Once upon a time" }], max_completion_tokens: 2, temperature: 0 }),
  messages: () => ({ model: MODEL_ID, max_tokens: 2, messages: [{ role: "user", content: "Once upon a time" }] }),
};

/** Where a hostile value may go, per surface (never the output budget: a valid huge one would only be slow). */
const TARGETS: Record<Surface, string[][]> = {
  responses: [["model"], ["input"], ["input", "0"], ["input", "0", "content"], ["input", "0", "role"], ["temperature"], ["top_p"], ["metadata"], ["metadata", "k"], ["tools"], ["tools", "0"], ["tool_choice"], ["text"], ["text", "format"], ["include"], ["user"], ["reasoning"], ["background"], ["prompt_cache_key"]],
  chat: [["model"], ["messages"], ["messages", "0"], ["messages", "0", "content"], ["messages", "0", "role"], ["temperature"], ["top_p"], ["metadata"], ["tools"], ["tool_choice"], ["response_format"], ["stream"], ["stream_options"], ["user"], ["n"], ["stop"]],
  messages: [["model"], ["messages"], ["messages", "0"], ["messages", "0", "content"], ["messages", "0", "role"], ["temperature"], ["top_p"], ["metadata"], ["tools"], ["tool_choice"], ["output_config"], ["system"], ["stop_sequences"]],
};

const nest = (depth: number, leaf: unknown = 1): unknown => {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
};

/** JSON schemas that are malformed, pathological or merely huge. */
const HOSTILE_SCHEMAS: unknown[] = [
  { type: "nope" },
  { type: "object", properties: { a: { $ref: "#/definitions/missing" } } },
  { $ref: "#" },
  { type: "object", properties: { a: { $ref: "#" } }, required: ["a"] },
  { type: "string", pattern: "(a+)+$" },
  { type: "string", pattern: "[" },
  { type: "string", minLength: 1e9 },
  { type: "array", minItems: 1e9, items: { type: "integer" } },
  { type: "integer", minimum: 10, maximum: 1 },
  { enum: [] },
  { enum: Array.from({ length: 2000 }, (_, i) => `value-${i}`) },
  { anyOf: [] },
  { allOf: [{ type: "string" }, { type: "integer" }] },
  { type: "object", properties: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`p${i}`, { type: "string" }])), required: Array.from({ length: 300 }, (_, i) => `p${i}`) },
  nest(60, { type: "string" }),
  { type: ["string", 5] },
  { properties: 5 },
  { type: "object", additionalProperties: { $ref: "#/$defs/x" }, $defs: { x: { $ref: "#/$defs/x" } } },
  { type: "string", format: "\u0000\ud800" },
  "not a schema",
  [],
  null,
];

/** Stands for arrays nested 50,000 deep, spliced into the JSON text (JSON.stringify itself cannot nest that far). */
const DEEP_MARK = "__deep_50000__";
const DEEP_TEXT = "[".repeat(50_000) + "]".repeat(50_000);

const VALUES: (() => unknown)[] = [
  () => null, () => true, () => 0, () => -1, () => 1e308, () => -1e308, () => 2 ** 53 + 1, () => 0.5,
  () => "", () => "x".repeat(200_000), () => "\ud800\udfff\ud800", () => "\u0000", () => "<|im_start|>system",
  () => [], () => [null], () => [[[]]], () => ({}), () => ({ type: "function" }), () => ({ $ne: 1 }),
  () => nest(100), () => nest(300), () => DEEP_MARK,
  () => Array.from({ length: 10_000 }, (_, i) => i),
  () => Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, "v"])),
  () => ({ role: "user", content: [{ type: "input_text", text: 5 }] }),
  () => [{ type: "function", name: "f", parameters: { type: "object" } }, { type: "function", name: "f" }],
];

/** Sets `path` in `body` to `value`, creating containers on the way. */
function setPath(body: Record<string, unknown>, path: string[], value: unknown): void {
  let at: any = body;
  for (const key of path.slice(0, -1)) {
    if (typeof at[key] !== "object" || at[key] === null) at[key] = /^\d+$/.test(key) ? [] : {};
    at = at[key];
  }
  at[path[path.length - 1]] = value;
}

/** A structured-output request with `schema` on `surface`. */
function withSchema(surface: Surface, body: Record<string, unknown>, schema: unknown, rng: Rng): void {
  const where = rng.int(0, 1);
  if (where === 1) {
    // as a tool's parameters, forced
    if (surface === "responses") Object.assign(body, { tools: [{ type: "function", name: "f", parameters: schema }], tool_choice: "required" });
    else if (surface === "chat") Object.assign(body, { tools: [{ type: "function", function: { name: "f", parameters: schema } }], tool_choice: "required" });
    else Object.assign(body, { tools: [{ name: "f", input_schema: schema }], tool_choice: { type: "any" } });
    return;
  }
  if (surface === "responses") body.text = { format: { type: "json_schema", name: "x", schema } };
  else if (surface === "chat") body.response_format = { type: "json_schema", json_schema: { name: "x", schema } };
  else body.output_config = { format: { type: "json_schema", schema } };
}

interface FuzzCase {
  surface: Surface;
  /** The body as bytes on the wire (JSON, or deliberately not). */
  body: Uint8Array<ArrayBuffer>;
  what: string;
}

const utf8 = new TextEncoder();

function makeCase(rng: Rng): FuzzCase {
  const surface = (["responses", "chat", "messages"] as const)[rng.int(0, 2)];
  const body = BASE[surface]();
  const what: string[] = [];
  const kind = rng.int(0, 9);
  if (kind <= 1) {
    const i = rng.int(0, HOSTILE_SCHEMAS.length - 1);
    withSchema(surface, body, HOSTILE_SCHEMAS[i], rng);
    what.push(`schema ${i}`);
  } else {
    for (let n = rng.int(1, 3); n > 0; n--) {
      const path = TARGETS[surface][rng.int(0, TARGETS[surface].length - 1)];
      const v = rng.int(0, VALUES.length - 1);
      setPath(body, path, VALUES[v]());
      what.push(`${path.join(".")}=value ${v}`);
    }
  }
  let bytes: Uint8Array<ArrayBuffer> = utf8.encode(JSON.stringify(body).replaceAll(`"${DEEP_MARK}"`, DEEP_TEXT));
  const wire = rng.int(0, 19);
  if (wire === 0) {
    // bytes that are not UTF-8, inside a string
    const at = bytes.indexOf(0x22, 10) + 1;
    bytes = new Uint8Array([...bytes.slice(0, at), 0xff, 0xfe, 0xc3, ...bytes.slice(at)]);
    what.push("bad utf-8");
  } else if (wire === 1) {
    bytes = bytes.slice(0, rng.int(1, bytes.length - 1));
    what.push("truncated");
  }
  return { surface, body: bytes, what: `${surface} ${what.join(", ")}` };
}

describe(`fuzz: ${REQUESTS} seeded hostile requests (seed ${SEED})`, () => {
  test("no 5xx, every error in the envelope, the server healthy after, structured outputs still working", async () => {
    const rng = new Rng(SEED);
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const c = makeCase(rng);
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (rng.int(0, 3) === 0) headers["Idempotency-Key"] = `fuzz-${i}`;
      const res = await fetch(server.url + PATH[c.surface], { method: "POST", headers, body: c.body });
      const text = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status >= 500) failures.push(`#${i} ${c.what}: ${res.status} ${text.slice(0, 200)}`);
      else if (res.status >= 400) {
        try {
          envelope(JSON.parse(text));
        } catch (err) {
          failures.push(`#${i} ${c.what}: ${res.status} not an envelope: ${text.slice(0, 200)} (${(err as Error).message})`);
        }
      }
    }
    console.log(`fuzz statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
    expect(failures).toEqual([]);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const schema = { type: "object", properties: { animal: { enum: ["cat", "dog", "bird"] }, legs: { type: "integer", minimum: 0, maximum: 9 } }, required: ["animal", "legs"], additionalProperties: false };
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL_ID, messages: [{ role: "user", content: "A girl." }], max_completion_tokens: 64, temperature: 0, response_format: { type: "json_schema", json_schema: { name: "p", schema, strict: true } } }),
    });
    expect(res.status).toBe(200);
    const json = await res.json() as any;
    expect(json.choices[0].finish_reason).toBe("stop");
    const value = JSON.parse(json.choices[0].message.content);
    expect(["cat", "dog", "bird"]).toContain(value.animal);
    expect(Number.isInteger(value.legs)).toBe(true);
  });
});
