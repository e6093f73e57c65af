// Many requests at once through the real server (the scheduler's completion windows over the
// batching engine, stories15M-q8_0): asap work overtakes standard work, a conversation resent
// with one more turn starts on its cached pages (cached_tokens in both SDKs' usage), a client
// that goes away gives its pages back, and full queues refuse sync requests with 503 / 429 in
// the OpenAI envelope before storing anything, while every accepted request still finishes.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import OpenAI from "openai";
import { MODEL_ID, envelope, greedyCases, post, startTestServer, type GreedyCase, type TestServer } from "./e2e-harness.ts";

setDefaultTimeout(300_000);

let cases: GreedyCase[];
beforeAll(async () => {
  cases = await greedyCases();
});

const finished = (s: string) => !["queued", "in_progress"].includes(s);

async function metrics(server: TestServer): Promise<string> {
  return (await fetch(`${server.url}/metrics`)).text();
}
const gauge = (text: string, name: string, labels: string) => Number(text.match(new RegExp(`${name}\\{${labels}\\} ([0-9.e+-]+)`))?.[1]);

/** Polls until `done` holds (states, not sleeps: the engine's speed does not matter). */
async function until<T>(read: () => T | Promise<T>, done: (v: T) => boolean, what: string, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

describe("completion windows over the batch (16 sequences at once)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ batching: { maxRunning: 16, maxStepTokens: 64 }, scheduling: { standardWaitMs: 10 } });
  });
  afterAll(() => server?.close());

  test("an asap request sent while 16 standard ones run gets its first token before any queued standard one starts, and finishes before most", async () => {
    const prompts = ["Once upon a time", "The little dog", "Tom had a red ball", "The sun was", "Lily and Ben", "A big bear"];
    const standard: string[] = [];
    for (let i = 0; i < 24; i++) {
      const res = await post(`${server.url}/v1/responses`, {
        model: MODEL_ID, input: prompts[i % prompts.length], temperature: 0, max_output_tokens: 96, background: true,
        metadata: { completion_window: "standard" },
      });
      expect(res.status).toBe(202);
      standard.push(res.json.id);
    }
    const status = (id: string) => server.ctx.store.get(id)!.status;
    // 16 run (the engine's capacity), 8 wait in the scheduler
    await until(() => standard.filter((id) => status(id) === "in_progress").length, (n) => n === 16, "16 running");
    const queued = standard.filter((id) => status(id) === "queued");
    expect(queued.length).toBe(8);

    const t0 = Date.now();
    let firstTokenAt = 0;
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL_ID, messages: [{ role: "user", content: cases[0].prompt }], max_completion_tokens: 32, temperature: 0, stream: true, metadata: { completion_window: "asap" } }),
    });
    const reader = res.body!.getReader();
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
      if (!firstTokenAt && /"delta":\{"content":"[^"]/.test(text)) firstTokenAt = Date.now();
    }
    const asapDone = Date.now();
    expect(text).toContain("[DONE]");
    expect(firstTokenAt).toBeGreaterThanOrEqual(t0);

    await until(() => standard.every((id) => finished(status(id))), (v) => v, "every standard request done");
    const recs = standard.map((id) => server.ctx.store.get(id)!);
    for (const r of recs) expect(r.status).toBe("incomplete");
    // no queued standard request started before the asap one had its first token
    for (const id of queued) expect(server.ctx.store.get(id)!.startedAt!).toBeGreaterThanOrEqual(firstTokenAt);
    // and most standard requests finished after it (it joined the running batch, taking a slot,
    // instead of waiting for one)
    expect(recs.filter((r) => r.completedAt! > asapDone).length).toBeGreaterThan(standard.length / 2);
    // the engine ran them together: steps of 9-16 sequences
    expect(gauge(await metrics(server), "valar_engine_steps_total", `model="${MODEL_ID}",sequences="9-16"`)).toBeGreaterThan(0);
  });
});

describe("prefix cache through the API", () => {
  let server: TestServer;
  let uncached: TestServer;
  let openai: OpenAI;
  beforeAll(async () => {
    server = await startTestServer();
    uncached = await startTestServer({ batching: { prefixCache: false } });
    openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await uncached?.close();
  });

  test("a conversation resent with one more turn reports cached_tokens (whole pages) and the same text as without the cache", async () => {
    const first = [{ role: "user" as const, content: cases[2].prompt + " a big tree with many red apples on it. The boy wanted an apple" }];
    const one = await openai.chat.completions.create({ model: MODEL_ID, messages: first, max_completion_tokens: 40, temperature: 0, prompt_cache_key: "talk-1" } as never) as OpenAI.ChatCompletion;
    expect(one.usage!.prompt_tokens_details!.cached_tokens).toBe(0);
    const second = [...first, { role: "assistant" as const, content: one.choices[0].message.content! }, { role: "user" as const, content: "Then the girl came." }];
    const two = await openai.chat.completions.create({ model: MODEL_ID, messages: second, max_completion_tokens: 24, temperature: 0, prompt_cache_key: "talk-1" } as never) as OpenAI.ChatCompletion;
    const cached = two.usage!.prompt_tokens_details!.cached_tokens!;
    expect(cached).toBeGreaterThan(0);
    expect(cached % 16).toBe(0);
    expect(cached).toBeLessThan(two.usage!.prompt_tokens);
    const plain = new OpenAI({ baseURL: `${uncached.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const ref = await plain.chat.completions.create({ model: MODEL_ID, messages: second, max_completion_tokens: 24, temperature: 0 });
    expect(ref.usage!.prompt_tokens_details!.cached_tokens).toBe(0);
    expect(two.choices[0].message.content).toBe(ref.choices[0].message.content);

    // Responses reports it too, in input_tokens_details
    const r = await openai.responses.create({ model: MODEL_ID, input: second.map((m) => ({ role: m.role, content: m.content })), max_output_tokens: 8, temperature: 0 });
    expect(r.usage!.input_tokens_details.cached_tokens).toBeGreaterThan(0);
    expect(r.usage!.input_tokens_details.cached_tokens % 16).toBe(0);
    expect(gauge(await metrics(server), "valar_prefix_cache_hit_tokens_total", `model="${MODEL_ID}"`)).toBeGreaterThanOrEqual(cached + r.usage!.input_tokens_details.cached_tokens);
  });

  test("a client that disconnects mid-stream gives its sequence's pages back", async () => {
    const ctl = new AbortController();
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST", headers: { "content-type": "application/json" }, signal: ctl.signal,
      body: JSON.stringify({ model: MODEL_ID, messages: [{ role: "user", content: "Once upon a time there was" }], max_completion_tokens: 200, temperature: 0, stream: true }),
    });
    const reader = res.body!.getReader();
    let text = "";
    while ((text.match(/"content"/g) ?? []).length < 4) text += new TextDecoder().decode((await reader.read()).value);
    expect(gauge(await metrics(server), "valar_kv_pages", `model="${MODEL_ID}",state="used"`)).toBeGreaterThan(0);
    ctl.abort();
    const m = await until(() => metrics(server), (t) => gauge(t, "valar_kv_pages", `model="${MODEL_ID}",state="used"`) === 0, "pages given back");
    expect(gauge(m, "valar_running_sequences", `model="${MODEL_ID}"`)).toBe(0);
  });
});

describe("two engine replicas (src/engine/pool.ts)", () => {
  let two: TestServer;
  let one: TestServer;
  beforeAll(async () => {
    two = await startTestServer({ replicas: 2 });
    one = await startTestServer({ batching: { prefixCache: false } });
  });
  afterAll(async () => {
    await two?.close();
    await one?.close();
  });

  const chat = (server: TestServer, content: string, max: number) =>
    post(`${server.url}/v1/chat/completions`, { model: MODEL_ID, messages: [{ role: "user", content }], max_completion_tokens: max, temperature: 0 });

  test("share the load with the same text as one engine, and a resent conversation finds its replica's pages", async () => {
    const prompts = ["Once upon a time", "The little dog", "Tom had a red ball", "The sun was", "Lily and Ben", "A big bear"];
    const [a, b] = await Promise.all([
      Promise.all(prompts.map((p) => chat(two, p, 24))),
      Promise.all(prompts.map((p) => chat(one, p, 24))),
    ]);
    expect(a.map((r) => r.json.choices[0].message.content)).toEqual(b.map((r) => r.json.choices[0].message.content));
    // both replicas ran steps; the capacity the scheduler sees is both replicas'
    const text = await metrics(two);
    expect(gauge(text, "valar_engine_device_bytes", `model="${MODEL_ID}"`)).toBeGreaterThan(gauge(await metrics(one), "valar_engine_device_bytes", `model="${MODEL_ID}"`));
    expect(two.ctx.models.get(MODEL_ID)!.maxRunning).toBe(2 * one.ctx.models.get(MODEL_ID)!.maxRunning);
    const long = cases[2].prompt + " a big tree with many red apples on it. The boy wanted an apple";
    const first = await chat(two, long, 30);
    const again = await post(`${two.url}/v1/chat/completions`, {
      model: MODEL_ID, max_completion_tokens: 8, temperature: 0,
      messages: [{ role: "user", content: long }, { role: "assistant", content: first.json.choices[0].message.content }, { role: "user", content: "And then?" }],
    });
    expect(again.json.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
  });
});

describe("admission: bounded queues", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ batching: { maxRunning: 1 }, scheduling: { maxQueued: 2, standardWaitMs: 0 } });
  });
  afterAll(() => server?.close());

  const rows = () => (server.ctx.auth.db.$client.query("SELECT count(*) AS n FROM responses").get() as { n: number }).n;
  const body = (max: number, extra: Record<string, unknown> = {}) => ({ model: MODEL_ID, input: "Once upon a time", temperature: 0, max_output_tokens: max, ...extra });

  test("past the model's bound a sync request gets 503 overloaded_error and nothing is stored; background work is still accepted; everything accepted finishes", async () => {
    // one long background request holds the engine's only slot
    const long = await post(`${server.url}/v1/responses`, body(200, { background: true }));
    expect(long.status).toBe(202);
    await until(() => server.ctx.store.get(long.json.id)!.status, (s) => s === "in_progress", "the long one running");
    const waiting = [0, 1].map(() => post(`${server.url}/v1/responses`, body(2)));
    await until(() => server.ctx.scheduler.depth(MODEL_ID), (d) => d === 3, "two sync requests waiting");
    const before = rows();
    for (const path of ["/v1/responses", "/v1/chat/completions", "/v1/messages"]) {
      const req = path === "/v1/responses" ? body(2)
        : path === "/v1/chat/completions" ? { model: MODEL_ID, messages: [{ role: "user", content: "Hi" }], max_completion_tokens: 2 }
        : { model: MODEL_ID, messages: [{ role: "user", content: "Hi" }], max_tokens: 2 };
      const refused = await post(`${server.url}${path}`, req);
      expect(refused.status).toBe(503);
      expect(envelope(refused.json)).toMatchObject({ type: "overloaded_error", code: "queue_full" });
    }
    expect(rows()).toBe(before);
    const bg = await post(`${server.url}/v1/responses`, body(2, { background: true }));
    expect(bg.status).toBe(202);
    for (const r of await Promise.all(waiting)) expect(r.status).toBe(200);
    for (const id of [long.json.id, bg.json.id]) {
      const rec = await until(() => server.ctx.store.get(id)!, (r) => finished(r.status), "background done");
      expect(rec.status).toBe("incomplete");
    }
  });
});

describe("admission: a bound per key", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ batching: { maxRunning: 1 }, scheduling: { maxQueued: 0, maxQueuedPerKey: 1, standardWaitMs: 0 } });
  });
  afterAll(() => server?.close());

  test("a second waiting sync request of the same key gets 429 rate_limit_error", async () => {
    const long = await post(`${server.url}/v1/responses`, { model: MODEL_ID, input: "Once upon a time", temperature: 0, max_output_tokens: 150, background: true });
    await until(() => server.ctx.store.get(long.json.id)!.status, (s) => s === "in_progress", "the long one running");
    const first = post(`${server.url}/v1/chat/completions`, { model: MODEL_ID, messages: [{ role: "user", content: "Hi" }], max_completion_tokens: 2 });
    await until(() => server.ctx.scheduler.depth(MODEL_ID), (d) => d === 2, "one sync request waiting");
    const second = await post(`${server.url}/v1/chat/completions`, { model: MODEL_ID, messages: [{ role: "user", content: "Hi" }], max_completion_tokens: 2 });
    expect(second.status).toBe(429);
    expect(envelope(second.json)).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded" });
    expect((await first).status).toBe(200);
  });
});
