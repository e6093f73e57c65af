// Background responses against the real server and engine: 202 queued, then in_progress, then
// completed / incomplete with llama.cpp's greedy text; cancel of queued and running ones (and
// OpenAI's rules for the rest); completion windows validated per model, stored on the record,
// and asap work taken before standard work.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import OpenAI from "openai";
import { MODEL_ID, MODEL_PATH, envelope, greedyCases, post, startTestServer, type GreedyCase, type TestServer } from "./e2e-harness.ts";

setDefaultTimeout(60_000);

let server: TestServer;
let openai: OpenAI;
let cases: GreedyCase[];

/** A second id for the same file, configured with the asap window only. */
const ASAP_ONLY = "stories15M-asap";

beforeAll(async () => {
  cases = await greedyCases();
  // One sequence at a time per model, so that work waits and the queue's order shows
  // (test/batching.test.ts runs many at once).
  server = await startTestServer({
    models: [{ id: MODEL_ID, ref: MODEL_PATH }, { id: ASAP_ONLY, ref: MODEL_PATH }],
    windows: { [ASAP_ONLY]: ["asap"] },
    batching: { maxRunning: 1 },
  });
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
afterAll(async () => {
  await server?.close();
});

async function poll(id: string, until: (r: any) => boolean, timeoutMs = 30_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await (await fetch(`${server.url}/v1/responses/${id}`)).json();
    if (until(r) || Date.now() > deadline) return r;
    await Bun.sleep(25);
  }
}
const finished = (r: any) => !["queued", "in_progress"].includes(r.status);

const create = (fields: Record<string, unknown>, headers: Record<string, string> = {}) =>
  post(`${server.url}/v1/responses`, { model: MODEL_ID, input: "Once upon a time", temperature: 0, background: true, ...fields }, headers);

describe("background responses", () => {
  test("202 with status queued at once, then in_progress, then done with llama.cpp's greedy tokens", async () => {
    const c = cases[0];
    const res = await create({ input: c.prompt, max_output_tokens: 8, metadata: { completion_window: "asap" } });
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ object: "response", status: "queued", background: true, output: [], usage: null, error: null, metadata: { completion_window: "asap" } });
    expect(res.json.id).toMatch(/^resp_/);
    const seen: string[] = [];
    const done = await poll(res.json.id, (r) => (seen.push(r.status), finished(r)));
    expect(seen).toContain("in_progress");
    expect(done.status).toBe("incomplete");
    expect(done.usage.output_tokens).toBe(8);
    expect(done.output_text.length).toBeGreaterThan(0);
    expect(c.greedy_text.trimStart().startsWith(done.output_text.trimStart())).toBe(true);
    const sdk = await openai.responses.retrieve(res.json.id);
    expect(sdk.status).toBe("incomplete");
    expect(sdk.output_text).toBe(done.output_text);
  });

  test("the token limit gives incomplete with incomplete_details; the SDK's background create works", async () => {
    const c = cases[1];
    const r = await openai.responses.create({ model: MODEL_ID, input: c.prompt, temperature: 0, max_output_tokens: 3, background: true });
    expect(r.status).toBe("queued");
    const done = await poll(r.id, finished);
    expect(done.status).toBe("incomplete");
    expect(done.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(done.usage.output_tokens).toBe(3);
    expect(done.output_text.length).toBeGreaterThan(0);
    expect(c.greedy_text.trimStart().startsWith(done.output_text.trimStart())).toBe(true);
  });

  test("background is refused on chat completions and messages (Responses only)", async () => {
    const chat = await post(`${server.url}/v1/chat/completions`, { model: MODEL_ID, messages: [{ role: "user", content: "hi" }], background: true });
    expect(chat.status).toBe(400);
    expect(envelope(chat.json).param).toBe("background");
    const msg = await post(`${server.url}/v1/messages`, { model: MODEL_ID, max_tokens: 1, messages: [{ role: "user", content: "hi" }], background: true });
    expect(msg.status).toBe(400);
    expect(envelope(msg.json).param).toBe("background");
  });
});

describe("cancel", () => {
  test("a running one stops promptly and keeps its partial output; a queued one is cancelled without running", async () => {
    const running = await create({ max_output_tokens: 250 });
    const queued = await create({ max_output_tokens: 4 });
    await poll(running.json.id, (r) => r.status === "in_progress");
    await Bun.sleep(300);

    const q = await post(`${server.url}/v1/responses/${queued.json.id}/cancel`, {});
    expect(q.status).toBe(200);
    expect(q.json).toMatchObject({ id: queued.json.id, status: "cancelled", output: [] });
    expect(server.ctx.store.get(queued.json.id)!.startedAt).toBeNull();

    const t0 = performance.now();
    const r = await post(`${server.url}/v1/responses/${running.json.id}/cancel`, {});
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(r.status).toBe(200);
    expect(r.json.status).toBe("cancelled");
    expect(r.json.output[0]).toMatchObject({ type: "message", status: "incomplete" });
    expect(r.json.output_text.length).toBeGreaterThan(0);
    expect(r.json.usage.output_tokens).toBeGreaterThan(0);
    expect(r.json.usage.output_tokens).toBeLessThan(250);
    expect((await poll(running.json.id, finished)).status).toBe("cancelled");
    // The queued one never ran, even after the lane freed up.
    await Bun.sleep(100);
    expect(server.ctx.store.get(queued.json.id)!.status).toBe("cancelled");
    expect(server.ctx.scheduler.depth(MODEL_ID)).toBe(0);
  });

  test("cancelling a finished background response returns it unchanged (idempotent, as OpenAI does)", async () => {
    const r = await create({ max_output_tokens: 2 });
    const done = await poll(r.json.id, finished);
    const again = await post(`${server.url}/v1/responses/${r.json.id}/cancel`, {});
    expect(again.status).toBe(200);
    expect(again.json).toEqual(done);
    // The OpenAI SDK's own cancel call (POST without a body) works the same way.
    const sdk = await openai.responses.cancel(r.json.id);
    expect(sdk.status).toBe(done.status);
    expect(sdk.output_text).toBe(done.output_text);
  });

  test("cancelling a response that was not background: 400; an unknown id: 404 (both in the envelope)", async () => {
    const sync = await post(`${server.url}/v1/responses`, { model: MODEL_ID, input: "Hi", max_output_tokens: 1 });
    expect(sync.status).toBe(200);
    const c = await post(`${server.url}/v1/responses/${sync.json.id}/cancel`, {});
    expect(c.status).toBe(400);
    expect(envelope(c.json)).toMatchObject({ type: "invalid_request_error", param: "id" });
    const unknown = await post(`${server.url}/v1/responses/resp_doesnotexist/cancel`, {});
    expect(unknown.status).toBe(404);
    expect(envelope(unknown.json).type).toBe("not_found_error");
  });
});

describe("completion windows", () => {
  test("stored on the record; omitted is standard where supported, asap where it is the only one", async () => {
    const std = await create({ max_output_tokens: 1 });
    expect(server.ctx.store.get(std.json.id)!.window).toBe("standard");
    const asap = await create({ max_output_tokens: 1, metadata: { completion_window: "asap" } });
    expect(server.ctx.store.get(asap.json.id)!.window).toBe("asap");
    const only = await create({ model: ASAP_ONLY, max_output_tokens: 1 });
    expect(only.status).toBe(202);
    expect(server.ctx.store.get(only.json.id)!.window).toBe("asap");
    await Promise.all([std, asap, only].map((r) => poll(r.json.id, finished)));
  });

  const refused: [string, Record<string, unknown>, string[]][] = [
    ["a window the model lacks", { model: ASAP_ONLY, metadata: { completion_window: "standard" } }, ["'asap'"]],
    ["an unknown value", { metadata: { completion_window: "flex" } }, ["'asap'", "'standard'"]],
    ["an empty value", { metadata: { completion_window: "" } }, ["'asap'", "'standard'"]],
  ];
  for (const [name, fields, listed] of refused) {
    test(`${name}: 400 invalid_request_error listing the model's windows, nothing stored`, async () => {
      const before = server.ctx.store.unfinished().length;
      const count = () => server.ctx.auth.db.$client.query("SELECT count(*) AS n FROM responses").get() as { n: number };
      const rows = count().n;
      for (const path of ["/v1/responses", "/v1/chat/completions"]) {
        const body = path === "/v1/responses"
          ? { model: MODEL_ID, input: "Hi", background: true, ...fields }
          : { model: MODEL_ID, messages: [{ role: "user", content: "Hi" }], ...fields };
        const res = await post(`${server.url}${path}`, body);
        expect(res.status).toBe(400);
        const err = envelope(res.json);
        expect(err).toMatchObject({ type: "invalid_request_error", param: "metadata.completion_window" });
        for (const w of listed) expect(err.message).toContain(w);
      }
      expect(count().n).toBe(rows);
      expect(server.ctx.store.unfinished().length).toBe(before);
    });
  }

  test("waiting asap work runs before waiting standard work", async () => {
    const blocker = await create({ max_output_tokens: 12 });
    await poll(blocker.json.id, (r) => r.status === "in_progress");
    const standard = await create({ max_output_tokens: 2, metadata: { completion_window: "standard" } });
    const asap = await create({ max_output_tokens: 2, metadata: { completion_window: "asap" } });
    const [s, a] = await Promise.all([poll(standard.json.id, finished), poll(asap.json.id, finished)]);
    expect(s.status).toBe("incomplete");
    expect(a.status).toBe("incomplete");
    const started = (id: string) => server.ctx.store.get(id)!.startedAt!;
    expect(started(asap.json.id)).toBeLessThan(started(standard.json.id));
    expect(started(blocker.json.id)).toBeLessThan(started(asap.json.id));
  });
});
