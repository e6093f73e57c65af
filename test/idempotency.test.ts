// Idempotency as API.md states it, against the real server: scope (organization, API key, key),
// SHA-256 body fingerprint, replay of the record's current state, 400 idempotency_error on a
// different body, the key left free after an early 4xx, expiry, the header per surface, and 20
// racing copies running inference once. Then a 4xx fuzz of the background and idempotency paths
// that must answer in the envelope and leave no row behind.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { MODEL_ID, envelope, post, startTestServer, type TestServer } from "./e2e-harness.ts";
import { openDb } from "../src/store/db.ts";
import { createKey, DEFAULT_ORG } from "../src/store/keys.ts";
import { ResponseStore } from "../src/store/responses.ts";
import { IdempotencyMismatch, IdempotencyStore, canonicalJson, fingerprint } from "../src/store/idempotency.ts";
import type { Generation } from "../src/generation.ts";

setDefaultTimeout(60_000);

let server: TestServer;
const keys: { a1: string; a2: string; b: string } = { a1: "", a2: "", b: "" };
let generations = 0;

beforeAll(async () => {
  server = await startTestServer({}, (dbPath) => {
    const db = openDb(dbPath);
    keys.a1 = createKey(db, "acme").key;
    keys.a2 = createKey(db, "acme").key;
    keys.b = createKey(db, "globex").key;
    db.$client.close();
  });
  // Count real engine runs: the scheduler calls this very object.
  const engine = server.ctx.engine;
  const generate = engine.generate.bind(engine);
  engine.generate = (...args: Parameters<typeof generate>) => {
    generations++;
    return generate(...args);
  };
});
afterAll(async () => {
  await server?.close();
});

const auth = (key: string, extra: Record<string, string> = {}) => ({ authorization: `Bearer ${key}`, ...extra });
const respBody = (fields: Record<string, unknown> = {}) => ({ model: MODEL_ID, input: "Once upon a time", temperature: 0, max_output_tokens: 2, ...fields });
const responses = (body: unknown, headers: Record<string, string>) => post(`${server.url}/v1/responses`, body, headers);

function count(table: string): number {
  return (server.ctx.auth.db.$client.query(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
}
const counts = () => ({ responses: count("responses"), idempotency_keys: count("idempotency_keys"), webhook_deliveries: count("webhook_deliveries") });

async function settle(id: string, key: string): Promise<any> {
  for (;;) {
    const r = await (await fetch(`${server.url}/v1/responses/${id}`, { headers: auth(key) })).json();
    if (!["queued", "in_progress"].includes(r.status)) return r;
    await Bun.sleep(25);
  }
}

describe("replay", () => {
  test("same key and body: the same record back without a second inference, marked as a replay", async () => {
    const headers = auth(keys.a1, { "Idempotency-Key": "replay-1" });
    const runs = generations;
    const first = await responses(respBody(), headers);
    expect(first.status).toBe(200);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    // Same body with keys in another order and other whitespace: the fingerprint is of the JSON value.
    const reordered = JSON.stringify({ max_output_tokens: 2, temperature: 0, input: "Once upon a time", model: MODEL_ID }, null, 2);
    const again = await responses(reordered, headers);
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toEqual(first.json);
    expect(generations - runs).toBe(1);
  });

  test("same key, different body: 400 idempotency_error, nothing stored", async () => {
    const headers = auth(keys.a1, { "Idempotency-Key": "replay-1" });
    const before = counts();
    const res = await responses(respBody({ max_output_tokens: 3 }), headers);
    expect(res.status).toBe(400);
    expect(envelope(res.json)).toMatchObject({ type: "idempotency_error" });
    expect(res.json.error.message).toContain("replay-1");
    expect(counts()).toEqual(before);
  });

  test("the scope is (organization, API key, key): another key or organization gets its own record", async () => {
    const body = respBody({ max_output_tokens: 1 });
    const ids = new Set<string>();
    for (const key of [keys.a1, keys.a2, keys.b]) {
      const res = await responses(body, auth(key, { "Idempotency-Key": "scoped" }));
      expect(res.status).toBe(200);
      ids.add(res.json.id);
    }
    expect(ids.size).toBe(3);
    const replay = await responses(body, auth(keys.a2, { "Idempotency-Key": "scoped" }));
    expect(ids.has(replay.json.id)).toBe(true);
  });

  test("20 identical requests racing with one key run inference once and all get the finished record", async () => {
    const runs = generations;
    const before = count("responses");
    const headers = auth(keys.a1, { "Idempotency-Key": "race-20" });
    const all = await Promise.all(Array.from({ length: 20 }, () => responses(respBody({ max_output_tokens: 3 }), headers)));
    expect(all.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(new Set(all.map((r) => r.json.id)).size).toBe(1);
    expect(new Set(all.map((r) => r.text)).size).toBe(1);
    expect(all[0].json.status).toBe("incomplete");
    expect(all.filter((r) => r.headers.get("idempotent-replayed") === "true").length).toBe(19);
    expect(generations - runs).toBe(1);
    expect(count("responses") - before).toBe(1);
  });

  test("20 racing background copies: one record, one inference, every answer 202", async () => {
    const runs = generations;
    const headers = auth(keys.a1, { "Idempotency-Key": "race-bg" });
    const all = await Promise.all(Array.from({ length: 20 }, () => responses(respBody({ background: true, max_output_tokens: 2 }), headers)));
    expect(all.map((r) => r.status)).toEqual(Array(20).fill(202));
    expect(new Set(all.map((r) => r.json.id)).size).toBe(1);
    await settle(all[0].json.id, keys.a1);
    expect(generations - runs).toBe(1);
  });

  test("a background replay returns the current state: queued or in_progress while running, then done", async () => {
    const headers = auth(keys.a1, { "Idempotency-Key": "bg-current" });
    // 32 tokens (~0.15 s here): still unfinished when the replay arrives
    const body = respBody({ background: true, max_output_tokens: 32 });
    const first = await responses(body, headers);
    expect(first.status).toBe(202);
    const early = await responses(body, headers);
    expect(early.status).toBe(202);
    expect(early.json.id).toBe(first.json.id);
    expect(["queued", "in_progress"]).toContain(early.json.status);
    const done = await settle(first.json.id, keys.a1);
    const late = await responses(body, headers);
    expect(late.json.status).toBe(done.status);
    expect(late.json).toEqual(done);
  });

  test("a keyed request outlives a dropped connection: the retry gets the finished result, not a cancelled one", async () => {
    const headers = { "content-type": "application/json", ...auth(keys.a1, { "Idempotency-Key": "dropped" }) };
    const body = JSON.stringify(respBody({ max_output_tokens: 12 }));
    const runs = generations;
    const controller = new AbortController();
    const first = fetch(`${server.url}/v1/responses`, { method: "POST", headers, body, signal: controller.signal }).catch(() => null);
    for (let i = 0; i < 400 && !server.ctx.store.unfinished().some((r) => r.status === "in_progress"); i++) await Bun.sleep(10);
    controller.abort();
    await first;
    const retry = await responses(body, headers);
    expect(retry.status).toBe(200);
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(retry.json.status).toBe("incomplete");
    expect(retry.json.usage.output_tokens).toBe(12);
    expect(generations - runs).toBe(1);
  });

  test("chat: Idempotency-Key replays the completion, JSON and as a stream", async () => {
    const headers = auth(keys.a1, { "Idempotency-Key": "chat-1" });
    const body = { model: MODEL_ID, messages: [{ role: "user", content: "Hello" }], temperature: 0, max_completion_tokens: 3 };
    const runs = generations;
    const first = await post(`${server.url}/v1/chat/completions`, body, headers);
    const again = await post(`${server.url}/v1/chat/completions`, body, headers);
    expect(again.json).toEqual(first.json);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const streamed = await post(`${server.url}/v1/chat/completions`, { ...body, stream: true }, auth(keys.a1, { "Idempotency-Key": "chat-stream" }));
    const replayed = await post(`${server.url}/v1/chat/completions`, { ...body, stream: true }, auth(keys.a1, { "Idempotency-Key": "chat-stream" }));
    const text = (sse: string) => sse.split("\n\n").filter((e) => e.startsWith("data: {")).map((e) => JSON.parse(e.slice(6)).choices[0]?.delta?.content ?? "").join("");
    expect(text(replayed.text)).toBe(text(streamed.text));
    expect(text(replayed.text)).toBe(first.json.choices[0].message.content);
    expect(replayed.text.endsWith("data: [DONE]\n\n")).toBe(true);
    expect(generations - runs).toBe(2);
  });

  test("messages: anthropic-idempotency-key replays the message", async () => {
    const body = { model: MODEL_ID, max_tokens: 2, temperature: 0, messages: [{ role: "user", content: "Hello" }] };
    const runs = generations;
    const first = await post(`${server.url}/v1/messages`, body, auth(keys.a1, { "anthropic-idempotency-key": "msg-1" }));
    const again = await post(`${server.url}/v1/messages`, body, auth(keys.a1, { "anthropic-idempotency-key": "msg-1" }));
    expect(first.status).toBe(200);
    expect(again.json).toEqual(first.json);
    expect(generations - runs).toBe(1);
    const other = await post(`${server.url}/v1/messages`, { ...body, max_tokens: 1 }, auth(keys.a1, { "anthropic-idempotency-key": "msg-1" }));
    expect(other.status).toBe(400);
    expect(envelope(other.json).type).toBe("idempotency_error");
  });

  test("a key of 255 characters is fine; 256 is a 400 naming the header, on each surface", async () => {
    const ok = await responses(respBody({ max_output_tokens: 1 }), auth(keys.a1, { "Idempotency-Key": "k".repeat(255) }));
    expect(ok.status).toBe(200);
    const long = "k".repeat(256);
    const cases: [string, unknown, string][] = [
      ["/v1/responses", respBody(), "Idempotency-Key"],
      ["/v1/chat/completions", { model: MODEL_ID, messages: [{ role: "user", content: "x" }] }, "Idempotency-Key"],
      ["/v1/messages", { model: MODEL_ID, max_tokens: 1, messages: [{ role: "user", content: "x" }] }, "anthropic-idempotency-key"],
    ];
    for (const [path, body, header] of cases) {
      const res = await post(`${server.url}${path}`, body, auth(keys.a1, { [header]: long }));
      expect(res.status).toBe(400);
      const err = envelope(res.json);
      expect(err.param).toBe(header);
      expect(err.message).toContain(header);
      expect(err.message).toContain("255");
    }
  });
});

describe("a 4xx before the reservation leaves the key free", () => {
  test("invalid body, unknown model, bad window, then the valid request reserves the key", async () => {
    const headers = auth(keys.a1, { "Idempotency-Key": "early-4xx" });
    const before = counts();
    expect((await responses(respBody({ temperature: 5 }), headers)).status).toBe(400);
    expect((await responses(respBody({ model: "nope" }), headers)).status).toBe(404);
    expect((await responses(respBody({ metadata: { completion_window: "later" } }), headers)).status).toBe(400);
    expect((await responses(respBody({ input: "x ".repeat(600) }), headers)).status).toBe(400);
    expect(counts()).toEqual(before);
    const ok = await responses(respBody({ max_output_tokens: 1 }), headers);
    expect(ok.status).toBe(200);
    const different = await responses(respBody({ max_output_tokens: 2 }), headers);
    expect(envelope(different.json).type).toBe("idempotency_error");
  });
});

describe("4xx fuzz of the background and idempotency paths", () => {
  type Fuzz = [name: string, path: string, body: unknown, headers: Record<string, string>, status: number, param?: string | null];
  const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]));
  const bg = (fields: Record<string, unknown>) => respBody({ background: true, ...fields });
  const FUZZ: Fuzz[] = [
    ["key over 255", "/v1/responses", bg({}), { "Idempotency-Key": "x".repeat(300) }, 400, "Idempotency-Key"],
    ["key of 10 000", "/v1/responses", bg({}), { "Idempotency-Key": "x".repeat(10_000) }, 400, "Idempotency-Key"],
    ["anthropic key over 255", "/v1/messages", { model: MODEL_ID, max_tokens: 1, messages: [{ role: "user", content: "x" }] }, { "anthropic-idempotency-key": "y".repeat(256) }, 400, "anthropic-idempotency-key"],
    ["metadata a number", "/v1/responses", bg({ metadata: { a: 1 } }), {}, 400, "metadata.a"],
    ["metadata an object value", "/v1/responses", bg({ metadata: { a: { b: "c" } } }), {}, 400, "metadata.a"],
    ["metadata an array", "/v1/responses", bg({ metadata: ["a"] }), {}, 400, "metadata"],
    ["metadata a string", "/v1/responses", bg({ metadata: "a" }), {}, 400, "metadata"],
    ["metadata null value on chat", "/v1/chat/completions", { model: MODEL_ID, messages: [{ role: "user", content: "x" }], metadata: { a: null } }, {}, 400, "metadata.a"],
    ["17 metadata pairs", "/v1/responses", bg({ metadata: many }), {}, 400, "metadata"],
    ["metadata key of 65", "/v1/responses", bg({ metadata: { ["k".repeat(65)]: "v" } }), {}, 400, `metadata.${"k".repeat(65)}`],
    ["metadata value of 513", "/v1/responses", bg({ metadata: { a: "v".repeat(513) } }), {}, 400, "metadata.a"],
    ["webhook value of 513", "/v1/responses", bg({ metadata: { completion_webhook: `http://x/${"a".repeat(510)}` } }), {}, 400, "metadata.completion_webhook"],
    ["window not a window", "/v1/responses", bg({ metadata: { completion_window: "fast" } }), {}, 400, "metadata.completion_window"],
    ["background a string", "/v1/responses", bg({ background: "yes" }), {}, 400, "background"],
    ["background a number", "/v1/responses", bg({ background: 1 }), {}, 400, "background"],
    ["background with stream", "/v1/responses", bg({ stream: true }), {}, 400, "stream"],
    ["background on an unknown model", "/v1/responses", bg({ model: "ghost" }), {}, 404, "model"],
    ["background with no input", "/v1/responses", { model: MODEL_ID, background: true }, {}, 400, "input"],
    ["background, prompt too long", "/v1/responses", bg({ input: "y ".repeat(600) }), {}, 400, null],
    ["background body not JSON", "/v1/responses", "{\"background\": tru", {}, 400, null],
    ["background body an array", "/v1/responses", "[{\"background\": true}]", {}, 400, null],
  ];
  const UNKNOWN_IDS: [string, string][] = [
    ["GET", "/v1/responses/resp_unknown"],
    ["POST", "/v1/responses/resp_unknown/cancel"],
    ["GET", "/v1/responses/chatcmpl-unknown"],
    ["POST", "/v1/responses/msg_unknown/cancel"],
    ["GET", `/v1/responses/${"z".repeat(2000)}`],
    ["POST", "/v1/responses/%00%ff/cancel"],
  ];

  test("every case answers its 4xx in the envelope with the right param and writes nothing", async () => {
    const before = counts();
    for (const [name, path, body, headers, status, param] of FUZZ) {
      const key = `fuzz-${name}`;
      const res = await post(`${server.url}${path}`, body, auth(keys.a1, { "Idempotency-Key": key, "anthropic-idempotency-key": key, ...headers }));
      expect({ name, status: res.status }).toEqual({ name, status });
      const err = envelope(res.json);
      if (param !== undefined) expect({ name, param: err.param }).toEqual({ name, param });
    }
    for (const [method, path] of UNKNOWN_IDS) {
      const res = await fetch(`${server.url}${path}`, { method, headers: auth(keys.a1) });
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
      expect(envelope(await res.json()).type).toBe("not_found_error");
    }
    // Another organization's record is unknown too, for GET and cancel alike.
    const theirs = await responses(respBody({ background: true, max_output_tokens: 1 }), auth(keys.b));
    for (const [method, suffix] of [["GET", ""], ["POST", "/cancel"]]) {
      const res = await fetch(`${server.url}/v1/responses/${theirs.json.id}${suffix}`, { method, headers: auth(keys.a1) });
      expect(res.status).toBe(404);
    }
    await settle(theirs.json.id, keys.b);
    const after = counts();
    expect(after).toEqual({ ...before, responses: before.responses + 1 });
  });

  test("each fuzz key is still free: a valid request under it is accepted", async () => {
    const accepted: string[] = [];
    for (const [name] of FUZZ.filter(([, , , headers]) => Object.keys(headers).length === 0)) {
      const res = await responses(bg({ max_output_tokens: 1 }), auth(keys.a1, { "Idempotency-Key": `fuzz-${name}` }));
      expect({ name, status: res.status, replayed: res.headers.get("idempotent-replayed") }).toEqual({ name, status: 202, replayed: null });
      accepted.push(res.json.id);
    }
    for (const id of accepted) await settle(id, keys.a1);
  });
});

describe("reservations in the store", () => {
  const gen: Generation = {
    model: "m", input: { kind: "text", text: "x" }, maxOutputTokens: 1, temperature: 0, topP: 1, logprobs: false,
    tools: [], metadata: {}, window: "standard", user: null,
  };

  test("the fingerprint is SHA-256 of canonical JSON: key order is irrelevant, values are not", () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: null }] })).toBe('{"a":[{"c":null,"d":2}],"b":1}');
    expect(fingerprint({ a: 1, b: "x" })).toBe(fingerprint({ b: "x", a: 1 }));
    expect(fingerprint({ a: 1 })).not.toBe(fingerprint({ a: 2 }));
    expect(fingerprint({ a: 1 })).toBe(new Bun.CryptoHasher("sha256").update('{"a":1}').digest("hex"));
  });

  test("a reservation expires after the configured time; the key is then free for a new body", async () => {
    const db = openDb(":memory:");
    const store = new ResponseStore(db);
    const idem = new IdempotencyStore(db, 50);
    const principal = { organizationId: DEFAULT_ORG.id, apiKeyId: null };
    let n = 0;
    const reserve = (fp: string) => idem.reserve(
      { principal, key: "k", surface: "responses", fingerprint: fp },
      (tx) => store.create({ id: `resp_${++n}`, surface: "responses", principal, request: {}, generation: gen }, tx),
      (id, tx) => store.get(id, undefined, tx),
    );
    expect(reserve("a").kind).toBe("created");
    expect(reserve("a")).toMatchObject({ kind: "replay", record: { id: "resp_1" } });
    expect(() => reserve("b")).toThrow(IdempotencyMismatch);
    await Bun.sleep(60);
    expect(reserve("b")).toMatchObject({ kind: "created", record: { id: "resp_2" } });
    expect(idem.sweep(Date.now() + 1000)).toBe(1);
    db.$client.close();
  });

  test("a failed record insert leaves no reservation (one transaction)", () => {
    const db = openDb(":memory:");
    const idem = new IdempotencyStore(db);
    const principal = { organizationId: DEFAULT_ORG.id, apiKeyId: "key_1" };
    expect(() => idem.reserve({ principal, key: "k", surface: "chat", fingerprint: "f" }, () => { throw new Error("disk full"); }, () => null)).toThrow("disk full");
    expect((db.$client.query("SELECT count(*) AS n FROM idempotency_keys").get() as { n: number }).n).toBe(0);
    db.$client.close();
  });
});

