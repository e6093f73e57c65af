// The Batch API through the real server (stories15M-q8_0, real store, real HTTP): a 100,000-item
// batch is accepted, listed and read; a 200-item batch runs every item to the same text the
// request gives alone (llama.cpp's greedy ids for the recorded prompts, our own sync answer for
// the rest); cancel stops the queued rest; malformed batches get the right 4xx and store
// nothing; batches are another organization's 404; the official SDK's generic calls work; the
// batch's completion webhook fires once with the batch status object.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import OpenAI from "openai";
import { openDb, closeDb } from "../src/store/db.ts";
import { createKey, type CreatedKey } from "../src/store/keys.ts";
import { MODEL_ID, envelope, greedyCases, post, startTestServer, type GreedyCase, type TestServer } from "./e2e-harness.ts";

setDefaultTimeout(300_000);

const BATCH_BODY_LIMIT = 48 * 1024 * 1024;

let server: TestServer;
let cases: GreedyCase[];
let acme: CreatedKey;
let globex: CreatedKey;

beforeAll(async () => {
  cases = await greedyCases();
  server = await startTestServer({ maxBatchBodyBytes: BATCH_BODY_LIMIT }, (dbPath) => {
    const db = openDb(dbPath);
    acme = createKey(db, "acme");
    globex = createKey(db, "globex");
    closeDb(db);
  });
});
afterAll(() => server?.close());

const auth = (k: CreatedKey) => ({ authorization: `Bearer ${k.key}` });
const createBatch = (body: unknown, key = acme, headers: Record<string, string> = {}) =>
  post(`${server.url}/v1/batches`, body, { ...auth(key), ...headers });
const getJson = async (path: string, key = acme) => {
  const res = await fetch(`${server.url}${path}`, { headers: auth(key) });
  return { status: res.status, json: await res.json() as any };
};
const item = (custom_id: string, params: Record<string, unknown>) => ({ custom_id, params: { model: MODEL_ID, temperature: 0, ...params } });
const batchOf = (requests: unknown[], extra: Record<string, unknown> = {}) => ({ endpoint: "/v1/responses", requests, ...extra });

/** Polls until `done` holds (states, not sleeps: the engine's speed does not matter). */
async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, what: string, timeoutMs = 240_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}
const settled = (id: string, key = acme) =>
  until(() => getJson(`/v1/batches/${id}`, key).then((r) => r.json), (b) => b.status === "completed" || b.status === "cancelled", `batch ${id} to finish`);

/** Batch items in the store, over every batch: what "stores nothing" is measured by. */
function storedItems(): number {
  return Object.values(server.ctx.batches.totals().items).reduce((a, b) => a + b, 0);
}

describe("a 200-item batch on stories15M", () => {
  test("every item's text equals the same request run alone, each readable as a Response", async () => {
    const requests: ReturnType<typeof item>[] = [];
    // 150 items on the recorded prompts, with lengths from 1 to 30 tokens: llama.cpp's greedy text is the reference
    for (let i = 0; i < 150; i++) requests.push(item(`rec-${i}`, { input: cases[i % cases.length].prompt, max_output_tokens: 1 + (i % 30) }));
    // 50 distinct prompts: the reference is the same request sent on its own
    const names = ["Tom", "Sue", "Max", "Lily", "Ben", "Mia", "Sam", "Zoe", "Jack", "Anna"];
    const things = ["a red ball", "a big tree", "a little cat", "the sea", "a kite"];
    for (let i = 0; i < 50; i++) requests.push(item(`own-${i}`, { input: [{ role: "user", content: `${names[i % 10]} saw ${things[i % 5]} and` }], max_output_tokens: 6 }));
    const created = await createBatch(batchOf(requests, { label: "two-hundred" }));
    expect(created.status).toBe(200);
    expect(created.json).toMatchObject({ object: "batch", request_counts: 200, label: "two-hundred" });
    expect(created.json.id).toMatch(/^batch_[A-Za-z0-9_-]{20,}$/);

    const done = await settled(created.json.id);
    expect(done.status).toBe("completed");
    expect(done.status_counts.queued + done.status_counts.in_progress + done.status_counts.failed).toBe(0);
    expect(Object.keys(done.request_status)).toHaveLength(200);

    for (let i = 0; i < 150; i++) {
      const r = await getJson(`/v1/batches/${created.json.id}/rec-${i}`);
      expect(r.status).toBe(200);
      expect(r.json.object).toBe("response");
      expect(r.json.usage.output_tokens).toBe(1 + (i % 30));
      expect(cases[i % cases.length].greedy_text.trimStart().startsWith(r.json.output_text.trimStart())).toBe(true);
      // the same record through GET /v1/responses/{id}
      if (i < 3) expect((await getJson(`/v1/responses/${done.request_status[`rec-${i}`].response_id}`)).json).toEqual(r.json);
    }
    for (let i = 0; i < 50; i++) {
      const inBatch = (await getJson(`/v1/batches/${created.json.id}/own-${i}`)).json;
      const alone = await post(`${server.url}/v1/responses`, requests[150 + i].params, auth(acme));
      expect(alone.status).toBe(200);
      expect(inBatch.output_text).toBe(alone.json.output_text);
    }

    // the results stream: every item once, in batch order
    const res = await fetch(`${server.url}/v1/batches/${created.json.id}/results`, { headers: auth(acme) });
    expect(res.headers.get("content-type")).toContain("ndjson");
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.custom_id)).toEqual(requests.map((r) => r.custom_id));
    expect(lines[7].response.id).toBe(done.request_status["rec-7"].response_id);

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/valar_batches\{status="completed"\} [1-9]/);
    expect(metrics).toMatch(/valar_batch_items\{status="incomplete"\} [1-9]/);
  });
});

describe("cancel", () => {
  test("queued items become cancelled at once, running ones finish, and the counts add up", async () => {
    const requests = Array.from({ length: 300 }, (_, i) => item(`c-${i}`, { input: cases[i % 3].prompt, max_output_tokens: 8 }));
    const created = await createBatch(batchOf(requests));
    const id = created.json.id;
    const progressed = await until(() => getJson(`/v1/batches/${id}`).then((r) => r.json),
      (b) => b.status_counts.completed + b.status_counts.incomplete >= 10, "some items to finish");
    expect(progressed.status).toBe("in_progress");
    const cancelled = await post(`${server.url}/v1/batches/${id}/cancel`, {}, auth(acme));
    expect(cancelled.status).toBe(200);
    expect(["cancelling", "cancelled"]).toContain(cancelled.json.status);
    expect(cancelled.json.status_counts.queued).toBe(0);
    const cancelledAtOnce = cancelled.json.status_counts.cancelled;
    expect(cancelledAtOnce).toBeGreaterThan(100);

    const done = await settled(id);
    expect(done.status).toBe("cancelled");
    const c = done.status_counts;
    expect(c.cancelled).toBe(cancelledAtOnce);
    expect(c.completed + c.incomplete + c.cancelled).toBe(300);
    expect(c.queued + c.in_progress + c.failed).toBe(0);
    const one = Object.entries(done.request_status as Record<string, { status: string }>).find(([, s]) => s.status === "cancelled")!;
    const rec = (await getJson(`/v1/batches/${id}/${one[0]}`)).json;
    expect(rec.status).toBe("cancelled");
    expect(rec.output).toEqual([]);
    // cancelling again is not an error
    expect((await post(`${server.url}/v1/batches/${id}/cancel`, {}, auth(acme))).json.status).toBe("cancelled");
  });
});

describe("a batch beside asap traffic", () => {
  test("an asap request sent while a batch runs finishes while the batch still has queued items", async () => {
    const requests = Array.from({ length: 300 }, (_, i) => item(`q-${i}`, { input: cases[i % 3].prompt, max_output_tokens: 16 }));
    const id = (await createBatch(batchOf(requests))).json.id;
    await until(() => getJson(`/v1/batches/${id}`).then((r) => r.json), (b) => b.status_counts.in_progress > 0, "the batch to run");
    const asap = await post(`${server.url}/v1/responses`, { model: MODEL_ID, input: "The little dog", temperature: 0, max_output_tokens: 8, metadata: { completion_window: "asap" } }, auth(acme));
    expect(asap.status).toBe(200);
    expect(cases[1].greedy_text.trimStart().startsWith(asap.json.output_text.trimStart())).toBe(true);
    const after = (await getJson(`/v1/batches/${id}`)).json;
    expect(after.status_counts.queued).toBeGreaterThan(100);
    await post(`${server.url}/v1/batches/${id}/cancel`, {}, auth(acme));
    await settled(id);
  });
});

describe("a 100,000-item batch", () => {
  test("is accepted in one call, listed, its status read, and cancelled", async () => {
    const requests = Array.from({ length: 100_000 }, (_, i) => item(`item-${i}`, { input: [{ role: "user", content: `Tell a story about the number ${i}` }], max_output_tokens: 1 }));
    const body = JSON.stringify(batchOf(requests, { label: "hundred-k" }));
    const t0 = performance.now();
    const created = await createBatch(body);
    const acceptMs = performance.now() - t0;
    console.log(`100,000 items (${(body.length / 1e6).toFixed(1)} MB) accepted in ${acceptMs.toFixed(0)} ms`);
    expect(created.status).toBe(200);
    expect(created.json.request_counts).toBe(100_000);
    const id = created.json.id;

    const list = await getJson("/v1/batches?limit=1");
    expect(list.json).toHaveLength(1);
    expect(list.json[0].id).toBe(id);
    const status = await getJson(`/v1/batches/${id}`);
    expect(status.json.request_counts).toBe(100_000);
    expect(Object.keys(status.json.request_status)).toHaveLength(100_000);
    expect(status.json.request_status["item-99999"].status).toMatch(/^(queued|in_progress|completed|incomplete)$/);
    const one = await getJson(`/v1/batches/${id}/item-54321`);
    expect(one.json.object).toBe("response");

    const cancelled = await post(`${server.url}/v1/batches/${id}/cancel`, {}, auth(acme));
    expect(cancelled.json.status_counts.cancelled).toBeGreaterThan(99_000);
    const done = await settled(id);
    expect(done.status).toBe("cancelled");
  });
});

describe("malformed batches get a 4xx in the envelope and store nothing", () => {
  const good = (n: number) => Array.from({ length: n }, (_, i) => item(`g-${i}`, { input: "Once upon a time", max_output_tokens: 1 }));

  async function refused(body: unknown, status: number, param: string | null, code?: string) {
    const before = storedItems();
    const listed = (await getJson("/v1/batches?limit=200")).json.length;
    const res = await createBatch(body);
    expect(res.status).toBe(status);
    const err = envelope(res.json);
    expect(err.param).toBe(param);
    if (code) expect(err.code).toBe(code);
    expect(storedItems()).toBe(before);
    expect((await getJson("/v1/batches?limit=200")).json.length).toBe(listed);
    return err;
  }

  test("a duplicate custom_id", async () => {
    const requests = good(5);
    requests[3].custom_id = "g-1";
    await refused(batchOf(requests), 400, "requests[3].custom_id", "duplicate_custom_id");
  });

  test("a bad item at index 57,312 names its index and parameter", async () => {
    const requests = good(60_000);
    (requests[57_312].params as Record<string, unknown>).temperature = 3;
    const err = await refused(batchOf(requests), 400, "requests[57312].params.temperature", "invalid_value");
    expect(err.message).toContain("requests[57312]");
  });

  test("item errors are the Responses route's own, renamed to the item's place", async () => {
    const bad: Record<string, unknown>[] = [
      { input: "hi", temprature: 0 },
      { input: "hi", instructions: "be brief" },
      { model: "nope", input: "hi" },
      { input: "hi", text: { format: { type: "json_schema", name: "s", schema: { type: "nonsense" } } } },
      { input: "word ".repeat(400) },
      { input: [{ role: "robot", content: "hi" }] },
      { input: "hi", top_p: "high" },
      { input: "hi", metadata: { k: "x".repeat(600) } },
    ];
    for (const params of bad) {
      const full = { model: MODEL_ID, temperature: 0, ...params };
      const direct = await post(`${server.url}/v1/responses`, full, auth(acme));
      expect(direct.status).toBeGreaterThanOrEqual(400);
      const want = envelope(direct.json);
      const param = want.param === null ? "requests[2].params" : want.param.startsWith("[") ? `requests[2].params${want.param}` : `requests[2].params.${want.param}`;
      const err = await refused(batchOf([...good(2), { custom_id: "x", params: full }]), direct.status, param, want.code ?? undefined);
      expect(err.message).toBe(`requests[2]: ${want.message}`);
      expect(err.type).toBe(want.type);
    }
  });

  test("background, stream and the asap window in an item", async () => {
    await refused(batchOf([item("x", { input: "hi", background: true })]), 400, "requests[0].params.background");
    await refused(batchOf([item("x", { input: "hi", stream: true })]), 400, "requests[0].params.stream");
    await refused(batchOf([item("x", { input: "hi", metadata: { completion_window: "asap" } })]), 400, "requests[0].params.metadata.completion_window");
  });

  test("a label with spaces, 100,001 items, no items, another endpoint", async () => {
    await refused(batchOf(good(2), { label: "my batch" }), 400, "label");
    await refused(batchOf(good(2), { label: "x".repeat(129) }), 400, "label");
    await refused(batchOf(Array.from({ length: 100_001 }, (_, i) => ({ custom_id: `i${i}`, params: {} }))), 400, "requests", "too_many_requests");
    await refused(batchOf([]), 400, "requests");
    await refused({ endpoint: "/v1/chat/completions", requests: good(1) }, 400, "endpoint");
    await refused({ requests: good(1) }, 400, "endpoint");
  });

  test("a body over the limit is a 413", async () => {
    const pad = "x".repeat(500);
    const n = Math.ceil(BATCH_BODY_LIMIT / 500) + 10;
    const body = JSON.stringify(batchOf(Array.from({ length: n }, (_, i) => item(`p${i}`, { input: pad }))));
    expect(body.length).toBeGreaterThan(BATCH_BODY_LIMIT);
    await refused(body, 413, null, "request_too_large");
    // the same body chunked (no length to check first): read up to the limit, then refused
    const bytes = new TextEncoder().encode(body);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let at = 0; at < bytes.length; at += 1 << 20) c.enqueue(bytes.subarray(at, at + (1 << 20)));
        c.close();
      },
    });
    const res = await fetch(`${server.url}/v1/batches`, { method: "POST", body: stream, headers: { ...auth(acme), "content-type": "application/json" } });
    expect(res.status).toBe(413);
    expect(envelope(await res.json()).code).toBe("request_too_large");
  });
});

describe("ownership, idempotency, listing, the SDK and the webhook", () => {
  test("another organization's batch is a 404 on every route", async () => {
    const created = await createBatch(batchOf([item("a", { input: "Once upon a time", max_output_tokens: 2 })]));
    const id = created.json.id;
    for (const path of [`/v1/batches/${id}`, `/v1/batches/${id}/a`, `/v1/batches/${id}/results`]) {
      const res = await getJson(path, globex);
      expect(res.status).toBe(404);
      expect(envelope(res.json).type).toBe("not_found_error");
    }
    expect((await post(`${server.url}/v1/batches/${id}/cancel`, {}, auth(globex))).status).toBe(404);
    expect((await getJson("/v1/batches", globex)).json.map((b: any) => b.id)).not.toContain(id);
    expect((await getJson(`/v1/batches/${id}/nope`)).status).toBe(404);
    await settled(id);
  });

  test("an Idempotency-Key replays the batch instead of creating a second", async () => {
    const body = batchOf([item("k", { input: "The little dog", max_output_tokens: 2 })], { label: "idem" });
    const first = await createBatch(body, acme, { "Idempotency-Key": "batch-key-1" });
    const again = await createBatch(body, acme, { "Idempotency-Key": "batch-key-1" });
    expect(again.status).toBe(200);
    expect(again.json.id).toBe(first.json.id);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const other = await createBatch(batchOf([item("k", { input: "The big dog", max_output_tokens: 2 })]), acme, { "Idempotency-Key": "batch-key-1" });
    expect(other.status).toBe(400);
    expect(envelope(other.json).type).toBe("idempotency_error");
    await settled(first.json.id);
  });

  test("listing pages newest first with after_id / before_id / limit", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await createBatch(batchOf([item("l", { input: "Once upon a time", max_output_tokens: 1 })]))).json.id);
    const top = (await getJson("/v1/batches?limit=3")).json.map((b: any) => b.id);
    expect(top).toEqual([...ids].reverse());
    expect((await getJson(`/v1/batches?after_id=${ids[2]}&limit=1`)).json[0].id).toBe(ids[1]);
    expect((await getJson(`/v1/batches?before_id=${ids[0]}&limit=2`)).json.map((b: any) => b.id)).toEqual([ids[2], ids[1]]);
    for (const bad of ["0", "201", "x"]) expect(envelope((await getJson(`/v1/batches?limit=${bad}`)).json).param).toBe("limit");
    for (const id of ids) await settled(id);
  });

  test("the official openai SDK's generic post / get work against it", async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: acme.key });
    const created = await client.post<any>("/batches", { body: batchOf([item("sdk", { input: "Once upon a time", max_output_tokens: 3 })]) });
    expect(created.object).toBe("batch");
    await until(() => client.get<any>(`/batches/${created.id}`), (b) => b.status === "completed", "the SDK's batch");
    const rec = await client.get<any>(`/batches/${created.id}/sdk`);
    expect(cases[0].greedy_text.trimStart().startsWith(rec.output_text.trimStart())).toBe(true);
    const listed = await client.get<any[]>("/batches");
    expect(listed.some((b) => b.id === created.id)).toBe(true);
  });

  test("a batch's completion webhook fires once with the batch status object; items' own webhooks fire too", async () => {
    const got: { path: string; auth: string | null; body: any }[] = [];
    const hook = Bun.serve({
      port: 0,
      async fetch(req) {
        got.push({ path: new URL(req.url).pathname, auth: req.headers.get("authorization"), body: await req.json() });
        return new Response("ok");
      },
    });
    try {
      const base = `http://127.0.0.1:${hook.port}`;
      const created = await createBatch(batchOf([
        item("w1", { input: "Once upon a time", max_output_tokens: 2, metadata: { completion_webhook: `${base}/item` } }),
        item("w2", { input: "The little dog", max_output_tokens: 2 }),
      ], { metadata: { completion_webhook: `${base}/batch`, webhook_token: "tok" } }));
      const done = await settled(created.json.id);
      await until(async () => got.length, (n) => n >= 2, "both webhooks");
      const batchHook = got.find((g) => g.path === "/batch")!;
      expect(batchHook.auth).toBe("Bearer tok");
      expect(batchHook.body.id).toBe(created.json.id);
      expect(batchHook.body.status).toBe("completed");
      expect(batchHook.body.request_status).toEqual(done.request_status);
      const itemHook = got.find((g) => g.path === "/item")!;
      expect(itemHook.body.id).toBe(done.request_status.w1.response_id);
      await Bun.sleep(300);
      expect(got.filter((g) => g.path === "/batch")).toHaveLength(1);
    } finally {
      hook.stop(true);
    }
  });
});
