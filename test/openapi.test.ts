// The OpenAPI document against the real server: every route is listed with its request schema
// and the schema of what it answers with, and the bodies the server really sends (every output
// shape: text, logprobs, function and custom tool calls, reasoning, chunks, batches, errors)
// match those schemas exactly, no field missing and none undeclared.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { Validator } from "@seriousme/openapi-schema-validator";
import { MODEL_ID, post, startTestServer, type TestServer } from "./e2e-harness.ts";
import { findRandomModel, writeRandomGGUF } from "./support/random-gguf.ts";
import { ResponseObject } from "../src/api/responses.ts";
import { ChatCompletionChunkObject, ChatCompletionObject } from "../src/api/chat.ts";
import { MessageObject } from "../src/api/messages.ts";
import { BatchObject, BatchResultLine, BatchStatusObject, BatchSummaryObject } from "../src/api/batches.ts";
import { ModelListObject, ModelObject } from "../src/api/models.ts";
import { HealthObject, ReadyObject } from "../src/api/ops.ts";
import { ErrorObject } from "../src/api/errors.ts";

setDefaultTimeout(120_000);

const THINKER = "qwen3-think";
const TEMPLATE = readFileSync(join(import.meta.dir, "fixtures", "chat-templates", "qwen3.jinja"), "utf8");
const THINK_THEN_ANSWER = { regex: "<think>\n[a-z]{1,8}\n</think>\n\n[a-z]{1,8}" };
const WEATHER = {
  type: "object", properties: { city: { type: "string", maxLength: 8 } }, required: ["city"], additionalProperties: false,
};

let dir: string;
let server: TestServer;
let doc: any;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "valar-openapi-"));
  const thinker = writeRandomGGUF(findRandomModel("qwen3-f32"), dir, { chatTemplate: TEMPLATE }).path;
  server = await startTestServer({
    models: [{ id: MODEL_ID, ref: join(import.meta.dir, "../../shared/models/stories15M/stories15M-q8_0.gguf") }, { id: THINKER, ref: thinker }],
  });
  doc = await (await fetch(`${server.url}/openapi.json`)).json();
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Asserts `value` is an instance of `schema`, naming the first field that is not. */
function expectShape(schema: TSchema, value: unknown, what: string) {
  const first = Value.Errors(schema, value).First();
  expect(first ? `${what}: ${first.path} ${first.message} (${JSON.stringify(first.value)?.slice(0, 120)})` : "ok").toBe("ok");
}

/** The document's schema for an answer: a reference to the named component, which is `schema` as JSON. */
function documentedSchema(path: string, method: string, status: string, contentType = "application/json") {
  const ref = doc.paths[path]?.[method]?.responses?.[status]?.content?.[contentType]?.schema?.$ref as string | undefined;
  expect(ref, `${method} ${path} ${status} ${contentType}`).toBeDefined();
  return doc.components.schemas[ref!.replace("#/components/schemas/", "")];
}

const get = async (path: string) => {
  const res = await fetch(server.url + path);
  return { status: res.status, json: await res.json() as unknown };
};

async function settled(path: string, done: (json: any) => boolean) {
  for (;;) {
    const { json } = await get(path);
    if (done(json)) return json;
    await Bun.sleep(50);
  }
}

describe("the OpenAPI document", () => {
  test("GET /openapi.json lists every route with its method and the JSON body schemas", () => {
    expect(doc.openapi).toMatch(/^3\.1/);
    const expected: [string, string][] = [
      ["/v1/responses", "post"], ["/v1/responses/{id}", "get"], ["/v1/responses/{id}/cancel", "post"],
      ["/v1/chat/completions", "post"], ["/v1/messages", "post"], ["/v1/models", "get"], ["/v1/models/{id}", "get"],
      ["/v1/batches", "post"], ["/v1/batches", "get"], ["/v1/batches/{id}", "get"], ["/v1/batches/{id}/cancel", "post"],
      ["/v1/batches/{id}/results", "get"], ["/v1/batches/{id}/{custom_id}", "get"], ["/health", "get"], ["/metrics", "get"],
    ];
    for (const [p, method] of expected) expect(doc.paths[p]?.[method], `${method} ${p}`).toBeDefined();
    const required = (p: string) => doc.paths[p].post.requestBody.content["application/json"].schema.required;
    expect(required("/v1/chat/completions")).toEqual(expect.arrayContaining(["model", "messages"]));
    expect(required("/v1/messages")).toEqual(expect.arrayContaining(["model", "max_tokens", "messages"]));
    expect(required("/v1/responses")).toEqual(expect.arrayContaining(["model", "input"]));
    expect(required("/v1/batches")).toEqual(expect.arrayContaining(["endpoint", "requests"]));
  });

  test("it is a valid OpenAPI 3.1 document (the specification's own JSON Schema)", async () => {
    const result = await new Validator().validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  test("every route declares what it answers with, errors as the envelope, each shape once as a component", () => {
    const json = (s: TSchema) => JSON.parse(JSON.stringify(s));
    const answers: [string, string, string, TSchema, string?][] = [
      ["/v1/responses", "post", "200", ResponseObject], ["/v1/responses", "post", "202", ResponseObject],
      ["/v1/responses/{id}", "get", "200", ResponseObject], ["/v1/responses/{id}/cancel", "post", "200", ResponseObject],
      ["/v1/chat/completions", "post", "200", ChatCompletionObject], ["/v1/chat/completions", "post", "200", ChatCompletionChunkObject, "text/event-stream"],
      ["/v1/messages", "post", "200", MessageObject],
      ["/v1/models", "get", "200", ModelListObject], ["/v1/models/{id}", "get", "200", ModelObject],
      ["/v1/batches", "post", "200", BatchSummaryObject], ["/v1/batches/{id}", "get", "200", BatchStatusObject],
      ["/v1/batches/{id}/cancel", "post", "200", BatchObject], ["/v1/batches/{id}/results", "get", "200", BatchResultLine, "application/x-ndjson"],
      ["/v1/batches/{id}/{custom_id}", "get", "200", ResponseObject], ["/health", "get", "200", HealthObject], ["/ready", "get", "200", ReadyObject],
    ];
    for (const [p, method, status, schema, type] of answers) {
      const documented = documentedSchema(p, method, status, type);
      expect(documented.title).toBe(schema.title!);
      // Nested shapes are references too; compare with them put back.
      const inline = JSON.parse(JSON.stringify(documented).replace(/\{"\$ref":"#\/components\/schemas\/([A-Za-z]+)"\}/g,
        (_, name: string) => JSON.stringify(doc.components.schemas[name])));
      expect(inline).toEqual(json(schema));
    }
    expect(doc.paths["/v1/batches"].get.responses["200"].content["application/json"].schema.items.$ref).toBe("#/components/schemas/Batch");
    for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(op.responses?.["4XX"]?.content?.["application/json"]?.schema?.$ref, `${method} ${p}`).toBe("#/components/schemas/Error");
      }
    }
    expect(doc.components.schemas.Error).toEqual(json(ErrorObject));
  });

  test("it names the Bearer key, the public routes, and each surface's idempotency header", () => {
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.security).toEqual([{ bearer: [] }, {}]);
    for (const p of ["/health", "/ready", "/metrics"]) expect(doc.paths[p].get.security, p).toEqual([]);
    expect(doc.paths["/v1/responses"].post.security).toBeUndefined();
    const header = (p: string) => doc.paths[p].post.parameters?.find((x: { in: string }) => x.in === "header");
    expect(header("/v1/responses")).toMatchObject({ name: "Idempotency-Key", required: false });
    expect(header("/v1/chat/completions")).toMatchObject({ name: "Idempotency-Key" });
    expect(header("/v1/batches")).toMatchObject({ name: "Idempotency-Key" });
    expect(header("/v1/messages")).toMatchObject({ name: "anthropic-idempotency-key" });
    expect(doc.paths["/v1/responses"].post.responses["200"].headers["Idempotent-Replayed"]).toBeDefined();
  });

  test("asked again, the document is the same (building it changes nothing it is built from)", async () => {
    expect(await (await fetch(`${server.url}/openapi.json`)).json()).toEqual(doc);
  });

  test("GET /docs is a page that renders it", async () => {
    const res = await fetch(`${server.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toContain('data-url="/openapi.json"');
  });
});

describe("what the server sends matches the documented schemas", () => {
  test("Responses: text with logprobs, a function call, a custom tool call, reasoning, background, cancel", async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ["text with logprobs", { input: "Once upon a time", max_output_tokens: 4, include: ["message.output_text.logprobs"], top_logprobs: 3, metadata: { k: "v" } }, "message"],
      ["function call", {
        input: [{ role: "user", content: "Weather?" }], temperature: 0, max_output_tokens: 96,
        tools: [{ type: "function", name: "get_weather", parameters: WEATHER, strict: true }], tool_choice: "required",
      }, "function_call"],
      ["custom tool call", {
        input: [{ role: "user", content: "How many users are there?" }], temperature: 0, max_output_tokens: 64,
        tools: [{ type: "custom", name: "run_sql", description: "Runs a SQL query." }], tool_choice: { type: "custom", name: "run_sql" },
      }, "custom_tool_call"],
      ["reasoning", { model: THINKER, input: "What is 2+2?", temperature: 0, max_output_tokens: 64, structured_outputs: THINK_THEN_ANSWER }, "reasoning"],
    ];
    for (const [what, fields, itemType] of cases) {
      const res = await post(`${server.url}/v1/responses`, { model: MODEL_ID, ...fields });
      expect(res.status, what).toBe(200);
      expect(res.json.output.map((o: { type: string }) => o.type), what).toContain(itemType);
      expectShape(ResponseObject, res.json, what);
      expectShape(ResponseObject, (await get(`/v1/responses/${res.json.id}`)).json, `${what}, retrieved`);
    }
    const bg = await post(`${server.url}/v1/responses`, { model: MODEL_ID, input: "Once upon a time", max_output_tokens: 2, background: true });
    expect(bg.status).toBe(202);
    expectShape(ResponseObject, bg.json, "background, accepted");
    const done = await settled(`/v1/responses/${bg.json.id}`, (r) => r.status === "completed" || r.status === "incomplete");
    expectShape(ResponseObject, done, "background, finished");
    const cancelled = await post(`${server.url}/v1/responses/${bg.json.id}/cancel`, {});
    expect(cancelled.status).toBe(200);
    expectShape(ResponseObject, cancelled.json, "cancel");
  });

  test("Chat Completions: a completion, tool calls, reasoning, and every chunk of a stream", async () => {
    const base = { model: MODEL_ID, messages: [{ role: "user", content: "Once upon a time" }], max_completion_tokens: 4 };
    const cases: [string, Record<string, unknown>][] = [
      ["text", {}],
      ["tool call", { temperature: 0, max_completion_tokens: 96, tools: [{ type: "function", function: { name: "get_weather", parameters: WEATHER } }], tool_choice: "required" }],
      ["reasoning", { model: THINKER, temperature: 0, max_completion_tokens: 64, structured_outputs: THINK_THEN_ANSWER }],
    ];
    for (const [what, fields] of cases) {
      const res = await post(`${server.url}/v1/chat/completions`, { ...base, ...fields });
      expect(res.status, what).toBe(200);
      if (what === "tool call") expect(res.json.choices[0].finish_reason).toBe("tool_calls");
      expectShape(ChatCompletionObject, res.json, what);
    }
    for (const [what, fields] of cases) {
      const res = await post(`${server.url}/v1/chat/completions`, { ...base, ...fields, stream: true, stream_options: { include_usage: true } });
      expect(res.status, what).toBe(200);
      const events = res.text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice("data: ".length));
      expect(events.at(-1)).toBe("[DONE]");
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
      expect(chunks.at(-1).usage, what).toBeDefined();
      chunks.forEach((c, i) => expectShape(ChatCompletionChunkObject, c, `${what}, chunk ${i}`));
    }
  });

  test("Messages: a story model's text and a thinking model's answer", async () => {
    for (const model of [MODEL_ID, THINKER]) {
      const res = await post(`${server.url}/v1/messages`, { model, max_tokens: 8, messages: [{ role: "user", content: "Hello" }] });
      expect(res.status, model).toBe(200);
      expectShape(MessageObject, res.json, model);
    }
  });

  test("Batches: created, listed, read, cancelled, results and one item", async () => {
    const created = await post(`${server.url}/v1/batches`, {
      endpoint: "/v1/responses", label: "shapes", metadata: { k: "v" },
      requests: [{ custom_id: "a", params: { model: MODEL_ID, input: "Once upon a time", max_output_tokens: 2 } }],
    });
    expect(created.status).toBe(200);
    expectShape(BatchSummaryObject, created.json, "created");
    const id = created.json.id as string;
    const finished = await settled(`/v1/batches/${id}`, (b) => b.status === "completed");
    expectShape(BatchStatusObject, finished, "read");
    const list = (await get("/v1/batches")).json as unknown[];
    list.forEach((b, i) => expectShape(BatchObject, b, `listed ${i}`));
    const results = (await (await fetch(`${server.url}/v1/batches/${id}/results`)).text()).trim().split("\n");
    expect(results).toHaveLength(1);
    expectShape(BatchResultLine, JSON.parse(results[0]), "result line");
    expectShape(ResponseObject, (await get(`/v1/batches/${id}/a`)).json, "item");
    const cancelled = await post(`${server.url}/v1/batches/${id}/cancel`, {});
    expect(cancelled.status).toBe(200);
    expectShape(BatchObject, cancelled.json, "cancelled");
  });

  test("models, health, readiness and errors", async () => {
    expectShape(ModelListObject, (await get("/v1/models")).json, "models");
    expectShape(ModelObject, (await get(`/v1/models/${MODEL_ID}`)).json, "model");
    expectShape(HealthObject, (await get("/health")).json, "health");
    expectShape(ReadyObject, (await get("/ready")).json, "ready");
    for (const res of [
      await get("/v1/models/nope"),
      await post(`${server.url}/v1/responses`, { model: MODEL_ID, input: "x", temperature: 9 }),
      await post(`${server.url}/v1/chat/completions`, "{not json"),
    ]) {
      expect(res.status).toBeGreaterThanOrEqual(400);
      expectShape(ErrorObject, res.json, `error ${res.status}`);
    }
  });
});
