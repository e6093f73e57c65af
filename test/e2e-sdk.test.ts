// End to end with the official SDKs, unmodified (only baseURL): the real server, the real engine
// on stories15M-q8_0, the real store. Greedy output through each surface must equal llama.cpp's
// recorded greedy continuation (../shared/models/stories15M/llama.cpp-greedy-q8_0.json) and the
// engine's own greedy output for the same prompt ids.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { MODEL_ID, greedyCases, post, startTestServer, type GreedyCase, type TestServer } from "./e2e-harness.ts";

// Real generation on a software GPU: token counts below are kept small, and tests get time.
setDefaultTimeout(120_000);

let server: TestServer;
let openai: OpenAI;
let anthropic: Anthropic;
let cases: GreedyCase[];
/**
 * The text `ids` add after a prompt: the whole sequence decoded, less the prompt decoded. (Decoding
 * the continuation alone would drop its leading space, as SentencePiece does at a text's start.)
 */
function continuation(c: GreedyCase, n: number): string {
  const tok = server.ctx.models.get(MODEL_ID)!.tokenizer;
  return tok.decode([...c.prompt_ids, ...c.greedy_ids.slice(0, n)]).slice(tok.decode(c.prompt_ids).length);
}
const decodeAfter = (c: GreedyCase, ids: number[]) => {
  const tok = server.ctx.models.get(MODEL_ID)!.tokenizer;
  return tok.decode([...c.prompt_ids, ...ids]).slice(tok.decode(c.prompt_ids).length);
};

beforeAll(async () => {
  server = await startTestServer();
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused-auth-is-off", maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: server.url, authToken: "unused-auth-is-off", maxRetries: 0 });
  cases = await greedyCases();
});
afterAll(async () => {
  await server?.close();
});

/** The engine's own greedy ids for a prompt, straight from the EngineClient the server uses. */
async function engineGreedy(promptIds: number[], maxTokens: number): Promise<number[]> {
  const ids: number[] = [];
  await server.ctx.engine.generate(MODEL_ID, promptIds, { maxTokens, sampling: { temperature: 0, topP: 1 }, stopIds: server.ctx.models.get(MODEL_ID)!.tokenizer.stopIds }, (t) => ids.push(t.id));
  return ids;
}

describe("models", () => {
  test("list and retrieve", async () => {
    const page = await openai.models.list();
    expect(page.data.map((m) => m.id)).toEqual([MODEL_ID]);
    expect(page.data[0]).toMatchObject({ object: "model", owned_by: "valar" });
    const m = await openai.models.retrieve(MODEL_ID);
    expect(m.id).toBe(MODEL_ID);
    expect(typeof m.created).toBe("number");
  });
});

describe("responses", () => {
  test("sync greedy: 'Once upon a time' gives llama.cpp's 64-token continuation, incomplete at the limit", async () => {
    const c = cases[0];
    const r = await openai.responses.create({ model: MODEL_ID, input: c.prompt, temperature: 0, max_output_tokens: 64 });
    expect(r.output_text).toBe(c.greedy_text);
    expect(r.status).toBe("incomplete");
    expect(r.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(r.id).toMatch(/^resp_[A-Za-z0-9_-]{20,}$/);
    expect(r.usage).toMatchObject({ input_tokens: 5, output_tokens: 64, total_tokens: 69, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } });
    expect((r.usage as any).prompt_tokens).toBe(5);
    expect((r.usage as any).completion_tokens).toBe(64);
    expect(r).toMatchObject({ object: "response", model: MODEL_ID, temperature: 0, max_output_tokens: 64, parallel_tool_calls: false, truncation: "disabled", store: true, background: false, error: null });

    const again = await openai.responses.retrieve(r.id);
    expect(again.output_text).toBe(c.greedy_text);
    expect(again.status).toBe("incomplete");
  });

  test("logprobs: one per output token, and the tokens spell the text", async () => {
    const r = await openai.responses.create({ model: MODEL_ID, input: cases[1].prompt, temperature: 0, max_output_tokens: 6, include: ["message.output_text.logprobs"] });
    const part = (r.output[0] as any).content[0];
    expect(part.logprobs).toHaveLength(6);
    expect(part.logprobs.map((l: any) => l.token).join("")).toBe(part.text);
    for (const l of part.logprobs) expect(l.logprob).toBeLessThanOrEqual(0);
  });

  test("a conversation (message items) with temperature > 0 completes", async () => {
    const r = await openai.responses.create({
      model: MODEL_ID, max_output_tokens: 4, temperature: 0.8, top_p: 0.9,
      input: [{ role: "user", content: "Tom had a red ball." }, { role: "user", content: [{ type: "input_text", text: "One day" }] }],
      metadata: { job: "e2e" },
    });
    expect(["completed", "incomplete"]).toContain(r.status!);
    expect(r.usage!.output_tokens).toBeGreaterThan(0);
    expect(r.metadata).toEqual({ job: "e2e" });
  });
});

describe("chat completions", () => {
  const N = 8;

  test("non-streaming greedy equals llama.cpp and the engine itself", async () => {
    const c = cases[1];
    const res = await openai.chat.completions.create({ model: MODEL_ID, messages: [{ role: "user", content: c.prompt }], temperature: 0, max_completion_tokens: N });
    expect(res.choices).toHaveLength(1);
    expect(res.choices[0].finish_reason).toBe("stop");
    expect(res.choices[0].message.role).toBe("assistant");
    expect(res.choices[0].message.content).toBe(continuation(c, N));
    expect(res.choices[0].message.content).toBe(decodeAfter(c, await engineGreedy(c.prompt_ids, N)));
    expect(res.usage).toMatchObject({ prompt_tokens: c.prompt_ids.length, completion_tokens: N, total_tokens: c.prompt_ids.length + N });
    expect(res.id).toMatch(/^chatcmpl-/);
    expect(res).not.toHaveProperty("system_fingerprint");

    const stored = await openai.responses.retrieve(res.id);
    expect(stored.output_text).toBe(res.choices[0].message.content!);
    expect(stored.usage?.output_tokens).toBe(N);
  });

  test("streaming without usage: role first, deltas join to the non-streaming text, finish chunk, no usage", async () => {
    const c = cases[2];
    const stream = await openai.chat.completions.create({ model: MODEL_ID, messages: [{ role: "user", content: c.prompt }], temperature: 0, max_completion_tokens: N, stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    expect(new Set(chunks.map((ch) => ch.id)).size).toBe(1);
    const text = chunks.map((ch) => ch.choices[0]?.delta.content ?? "").join("");
    expect(text).toBe(continuation(c, N));
    const last = chunks[chunks.length - 1];
    expect(last.choices[0].finish_reason).toBe("stop");
    expect(chunks.filter((ch) => ch.choices[0]?.finish_reason)).toHaveLength(1);
    expect(chunks.some((ch) => ch.usage)).toBe(false);
    expect(chunks.length).toBeGreaterThan(4); // deltas arrive as tokens, not in one piece
  });

  test("streaming with include_usage: a last chunk with choices [] and usage; the wire ends with [DONE]", async () => {
    const c = cases[0];
    const stream = await openai.chat.completions.create({ model: MODEL_ID, messages: [{ role: "user", content: c.prompt }], temperature: 0, max_completion_tokens: 4, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks[chunks.length - 1];
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 });
    expect(chunks.map((ch) => ch.choices[0]?.delta.content ?? "").join("")).toBe(continuation(c, 4));

    const raw = await post(`${server.url}/v1/chat/completions`, { model: MODEL_ID, messages: [{ role: "user", content: c.prompt }], temperature: 0, max_completion_tokens: 2, stream: true });
    expect(raw.headers.get("content-type")).toContain("text/event-stream");
    expect(raw.text.endsWith("data: [DONE]\n\n")).toBe(true);
  });

  test("a client that disconnects cancels its generation", async () => {
    const controller = new AbortController();
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST", signal: controller.signal, headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL_ID, messages: [{ role: "user", content: "Once upon a time" }], max_completion_tokens: 200, temperature: 0, stream: true }),
    });
    const reader = res.body!.getReader();
    let seen = "";
    while (!seen.includes('"content":",')) seen += new TextDecoder().decode((await reader.read()).value);
    const id = /"id":"(chatcmpl-[^"]+)"/.exec(seen)![1];
    controller.abort();
    let rec: any;
    for (let i = 0; i < 100; i++) {
      rec = await (await fetch(`${server.url}/v1/responses/${id}`)).json();
      if (rec.status !== "in_progress" && rec.status !== "queued") break;
      await Bun.sleep(50);
    }
    expect(rec.status).toBe("cancelled");
    expect(rec.usage.output_tokens).toBeLessThan(200);
  });

  test("a request abandoned while queued is cancelled at once, without running", async () => {
    const long = (signal?: AbortSignal) => fetch(`${server.url}/v1/chat/completions`, {
      method: "POST", signal, headers: { "content-type": "application/json" },
      // 64 tokens (~0.3 s here): the first must still be running 40 ms in
      body: JSON.stringify({ model: MODEL_ID, messages: [{ role: "user", content: "Once upon a time" }], max_completion_tokens: 64, temperature: 0 }),
    });
    const first = long();
    await Bun.sleep(20);
    const controller = new AbortController();
    const queued = long(controller.signal).catch(() => null);
    await Bun.sleep(20);
    expect(server.ctx.scheduler.depth(MODEL_ID)).toBe(2);
    controller.abort();
    await queued;
    for (let i = 0; i < 50 && server.ctx.scheduler.depth(MODEL_ID) > 1; i++) await Bun.sleep(10);
    expect(server.ctx.scheduler.depth(MODEL_ID)).toBe(1);
    expect((await first).status).toBe(200);
  });

  test("concurrent requests are all served (queued per model)", async () => {
    const all = await Promise.all(cases.map((c) =>
      openai.chat.completions.create({ model: MODEL_ID, messages: [{ role: "user", content: c.prompt }], temperature: 0, max_completion_tokens: 4 })));
    all.forEach((res, i) => expect(res.choices[0].message.content).toBe(continuation(cases[i], 4)));
  });
});

describe("messages (Anthropic SDK)", () => {
  test("greedy message equals llama.cpp; stop_reason end_turn; stored and readable as a Response", async () => {
    const c = cases[0];
    // This SDK version's types no longer list `temperature`; the API (API.md) accepts 0–1 and the SDK sends it.
    const params = { model: MODEL_ID, max_tokens: 8, temperature: 0, messages: [{ role: "user", content: c.prompt }] } as Anthropic.MessageCreateParamsNonStreaming;
    const msg = await anthropic.messages.create(params);
    expect(msg.type).toBe("message");
    expect(msg.role).toBe("assistant");
    expect(msg.stop_reason).toBe("end_turn");
    expect(msg.stop_sequence).toBeNull();
    expect(msg.content).toEqual([{ type: "text", text: continuation(c, 8) } as any]);
    expect(msg.usage).toEqual({ input_tokens: 5, output_tokens: 8 } as any);
    expect(msg.id).toMatch(/^msg_/);
    const stored = await openai.responses.retrieve(msg.id);
    expect(stored.output_text).toBe((msg.content[0] as any).text);
  });
});

describe("operations", () => {
  test("health, ready, metrics", async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const ready = await fetch(`${server.url}/ready`);
    expect(ready.status).toBe(200);
    expect((await ready.json()).models).toEqual([MODEL_ID]);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/valar_http_requests_total\{method="POST",route="\/v1\/chat\/completions",status="200"\} \d+/);
    expect(metrics).toMatch(/valar_output_tokens_total\{model="stories15M-q8_0"\} \d+/);
    expect(metrics).toMatch(/valar_time_to_first_token_seconds_count\{model="stories15M-q8_0"\} [1-9]/);
    expect(metrics).toMatch(/valar_decode_tokens_per_second_count\{model="stories15M-q8_0"\} [1-9]/);
    expect(metrics).toContain("valar_queue_depth");
    // Nothing runs now: no page is held; earlier tests' full prompt pages sit in the prefix cache.
    const pages = (state: string) => Number(metrics.match(new RegExp(`valar_kv_pages\\{model="stories15M-q8_0",state="${state}"\\} (\\d+)`))?.[1]);
    expect(pages("used")).toBe(0);
    expect(pages("cached")).toBeGreaterThan(0);
    expect(pages("free")).toBeGreaterThan(0);
    expect(metrics).toMatch(/valar_kv_cache_usage_ratio\{model="stories15M-q8_0"\} 0\b/);
    expect(metrics).toMatch(/valar_running_sequences\{model="stories15M-q8_0"\} 0\b/);
    expect(metrics).toMatch(/valar_engine_steps_total\{model="stories15M-q8_0",sequences="1"\} [1-9]/);
    expect(metrics).toMatch(/valar_queue_wait_seconds_count\{model="stories15M-q8_0",window="standard"\} [1-9]/);
  });
});

// Last, because it takes the model away: an engine failure after the stream started reaches the
// client as an error event, and the record says failed.
describe("engine failure mid-stream", () => {
  test("data: {error} before the stream closes; the record is failed with the error", async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL_ID, messages: [{ role: "user", content: "Once upon a time" }], max_completion_tokens: 150, temperature: 0, stream: true }),
    });
    const reader = res.body!.getReader();
    let text = "";
    let unloading: Promise<void> | undefined;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
      if (!unloading && text.includes('"content":",')) unloading = server.ctx.engine.unload(MODEL_ID);
    }
    await unloading;
    const events = text.trim().split("\n\n");
    const last = JSON.parse(events[events.length - 1].replace(/^data: /, ""));
    expect(last.error.type).toBe("server_error");
    expect(text).not.toContain("[DONE]");
    const id = /"id":"(chatcmpl-[^"]+)"/.exec(text)![1];
    const rec = await (await fetch(`${server.url}/v1/responses/${id}`)).json();
    expect(rec.status).toBe("failed");
    expect(rec.error.message).toContain("engine");
  });
});
