// Unit tests of the API layer that need no engine: the unsupported-parameter tables, schema
// error mapping, the store (keys, organizations, records), Bearer auth, SSE framing, and each
// surface's translation to a Generation and back.

import { describe, expect, test, beforeEach } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { UNSUPPORTED, findUnsupported, type Surface } from "../src/api/unsupported.ts";
import { paramOf, schemaError } from "../src/api/validation.ts";
import { openDb, type Db } from "../src/store/db.ts";
import { createKey, findKey, listKeys, revokeKey, hashKey, DEFAULT_ORG, ensureOrganization } from "../src/store/keys.ts";
import { ResponseStore } from "../src/store/responses.ts";
import { authenticate } from "../src/api/auth.ts";
import { ApiError } from "../src/api/errors.ts";
import { MAX_UNREAD_BYTES, frame, sseResponse } from "../src/api/sse.ts";
import { PromptTooLong, hostModel, longestTokenBytes, preparePrompt, type ServedModel } from "../src/scheduler/models.ts";
import { ResponsesBody, responsesToGeneration, renderResponse } from "../src/api/responses.ts";
import { ChatBody, chatToGeneration, renderChatCompletion } from "../src/api/chat.ts";
import { MessagesBody, messagesToGeneration, renderMessage } from "../src/api/messages.ts";
import { run as keysCli } from "../src/cli/keys.ts";
import type { GenerationResult } from "../src/generation.ts";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { renderChat } from "../src/engine/chat/template.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";

const STORIES = join(import.meta.dir, "../../shared/models/stories15M/stories15M-q8_0.gguf");

describe("unsupported-parameter tables", () => {
  const cases: [Surface, Record<string, unknown>, string][] = [
    ["responses", { instructions: "be nice" }, "instructions"],
    ["responses", { tools: [{ type: "function", name: "f" }, { type: "web_search" }] }, "tools[1].type"],
    ["responses", { input: [{ role: "user", content: [{ type: "input_text", text: "a" }, { type: "input_file" }] }] }, "input[0].content[1].type"],
    ["responses", { include: ["message.output_text.logprobs", "file_search_call.results"] }, "include[1]"],
    ["responses", { store: false }, "store"],
    ["responses", { text: { format: { type: "json_object" } } }, "text.format.type"],
    ["chat", { max_tokens: 5 }, "max_tokens"],
    ["chat", { modalities: ["text", "audio"] }, "modalities"],
    ["chat", { messages: [{ role: "user", content: [{ type: "input_audio" }] }] }, "messages[0].content[0].type"],
    ["messages", { stream: true }, "stream"],
    ["messages", { messages: [{ role: "user", content: [{ type: "tool_result" }] }] }, "messages[0].content[0].type"],
  ];
  for (const [surface, body, param] of cases) {
    test(`${surface}: ${JSON.stringify(body).slice(0, 60)} -> ${param}`, () => {
      const err = findUnsupported(surface, { model: "m", ...body });
      expect(err).toBeInstanceOf(ApiError);
      expect(err!.status).toBe(400);
      expect(err!.param).toBe(param);
    });
  }

  test("accepted values and nulls pass", () => {
    expect(findUnsupported("chat", { n: 1, modalities: ["text"], store: true, service_tier: "auto", max_tokens: null, seed: null, stop: null })).toBeNull();
    expect(findUnsupported("responses", { store: true, truncation: "disabled", stream: false, include: ["message.output_text.logprobs"], tools: [{ type: "function" }] })).toBeNull();
    expect(findUnsupported("messages", { stream: false, messages: [{ role: "user", content: [{ type: "text", text: "x" }] }] })).toBeNull();
  });

  test("every rule names its parameter and fires on a sample value", () => {
    for (const [surface, rules] of Object.entries(UNSUPPORTED) as [Surface, typeof UNSUPPORTED.chat][]) {
      for (const rule of rules) {
        expect(rule.message.length).toBeGreaterThan(10);
        const sample = "present" in rule.refuse ? "x" : "values" in rule.refuse ? rule.refuse.values[0] : "__never_allowed__";
        // Build a body holding `sample` at the rule's path (one element for each `[]`).
        const build = (segments: string[]): unknown => {
          if (segments.length === 0) return sample;
          const [head, ...rest] = segments;
          const many = head.endsWith("[]");
          const inner = build(rest);
          return { [many ? head.slice(0, -2) : head]: many ? [inner] : inner };
        };
        const body = build(rule.path.split(".")) as Record<string, unknown>;
        const err = findUnsupported(surface, body);
        expect(err?.param).toBe(rule.path.replaceAll("[]", "[0]"));
      }
    }
  });
});

describe("schema errors", () => {
  test("JSON pointer becomes an SDK-style parameter name", () => {
    expect(paramOf("/messages/0/content/1/type")).toBe("messages[0].content[1].type");
    expect(paramOf("/temperature")).toBe("temperature");
    expect(paramOf("")).toBeNull();
  });

  const firstError = (schema: typeof ResponsesBody | typeof ChatBody | typeof MessagesBody, body: unknown) =>
    schemaError(Value.Errors(schema, body).First());

  test("out of range, wrong type, missing", () => {
    const e1 = firstError(ResponsesBody, { model: "m", input: "x", temperature: 2.5 });
    expect(e1.param).toBe("temperature");
    expect(e1.message).toContain("from 0 to 2");
    const e2 = firstError(ChatBody, { model: "m", messages: [{ role: "user", content: "x" }], top_p: "high" });
    expect(e2.param).toBe("top_p");
    const e3 = firstError(MessagesBody, { model: "m", messages: [{ role: "user", content: "x" }] });
    expect(e3.param).toBe("max_tokens");
    expect(e3.message).toContain("Missing required parameter");
    const e4 = firstError(MessagesBody, { model: "m", max_tokens: 5, temperature: 1.5, messages: [{ role: "user", content: "x" }] });
    expect(e4.param).toBe("temperature");
    const e5 = firstError(ChatBody, { model: "m", messages: [] });
    expect(e5.param).toBe("messages");
    expect(e5.status).toBe(400);
  });
});

describe("store and keys", () => {
  let dir: string;
  let db: Db;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "valar-store-"));
    db = openDb(join(dir, "v.db"));
    return () => rmSync(dir, { recursive: true, force: true });
  });

  test("WAL mode and migrations applied", () => {
    expect(db.$client.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    const tables = db.$client.query("SELECT name FROM sqlite_master WHERE type='table'").all().map((r: any) => r.name);
    expect(tables).toEqual(expect.arrayContaining(["responses", "api_keys", "organizations"]));
  });

  test("keys are stored hashed, found, listed and revoked", () => {
    const k = createKey(db, "acme", "ci");
    const raw = db.$client.query("SELECT hash FROM api_keys").all() as { hash: string }[];
    expect(raw).toEqual([{ hash: hashKey(k.key) }]);
    expect(JSON.stringify(db.$client.query("SELECT * FROM api_keys").all())).not.toContain(k.key);
    expect(findKey(db, k.key)).toEqual({ organizationId: k.organizationId, apiKeyId: k.id });
    expect(findKey(db, k.key + "x")).toBeNull();
    expect(listKeys(db).map((r) => r.organization)).toEqual(["acme"]);
    expect(revokeKey(db, k.id)).toBe(true);
    expect(revokeKey(db, k.id)).toBe(false);
    expect(findKey(db, k.key)).toBeNull();
  });

  test("records are scoped to their organization", () => {
    const store = new ResponseStore(db);
    const acme = ensureOrganization(db, "acme");
    const gen = { model: "m", input: { kind: "text" as const, text: "x" }, maxOutputTokens: null, temperature: 0, topP: 1, logprobs: false, tools: [], metadata: {}, window: "asap" as const, user: null };
    store.create({ id: "resp_a", surface: "responses", principal: { organizationId: acme.id, apiKeyId: null }, request: { model: "m" }, generation: gen });
    expect(store.get("resp_a", acme.id)?.status).toBe("queued");
    expect(store.get("resp_a", DEFAULT_ORG.id)).toBeNull();
    store.markStarted("resp_a");
    expect(store.get("resp_a")?.status).toBe("in_progress");
  });

  test("keys CLI: create prints the key once, list, revoke", async () => {
    const path = join(dir, "cli.db");
    const lines: string[] = [];
    const log = console.log;
    const err = console.error;
    console.log = (...a: unknown[]) => lines.push(a.join(" "));
    console.error = () => {};
    try {
      expect(await keysCli(["create", "--org", "acme", "--db", path])).toBe(0);
      const key = lines[0];
      expect(key).toMatch(/^valar-[A-Za-z0-9_-]{40,}$/);
      expect(await keysCli(["keys", "list", "--db", path])).toBe(0);
      expect(lines.slice(1).join("\n")).not.toContain(key);
      expect(lines[2]).toContain(key.slice(0, 12));
      const id = lines[2].split("\t")[0];
      expect(await keysCli(["revoke", id, "--db", path])).toBe(0);
      expect(await keysCli(["revoke", id, "--db", path])).toBe(1);
      expect(await keysCli(["create", "--db", path])).toBe(2);
      expect(await keysCli(["bogus"])).toBe(2);
    } finally {
      console.log = log;
      console.error = err;
    }
  });

  test("auth: off without keys, Bearer when on, x-api-key explained", () => {
    expect(authenticate(new Headers(), { db }).organizationId).toBe(DEFAULT_ORG.id);
    const k = createKey(db, "acme");
    const fail = (h: Record<string, string>) => {
      try {
        authenticate(new Headers(h), { db });
      } catch (e) {
        return e as ApiError;
      }
      throw new Error("expected a 401");
    };
    expect(fail({}).status).toBe(401);
    const viaXKey = fail({ "x-api-key": k.key });
    expect(viaXKey.type).toBe("authentication_error");
    expect(viaXKey.message).toContain("Bearer");
    expect(viaXKey.message).toContain("authToken");
    expect(fail({ authorization: "Bearer nope" }).message).toContain("Invalid API key");
    expect(authenticate(new Headers({ authorization: `Bearer ${k.key}` }), { db }).organizationId).toBe(k.organizationId);
    expect(authenticate(new Headers({ authorization: "Bearer env-key" }), { db, apiKey: "env-key" }).organizationId).toBe(DEFAULT_ORG.id);
  });
});

describe("SSE framing", () => {
  test("data events, then close; consumer cancel aborts the producer", async () => {
    expect(new TextDecoder().decode(frame({ data: { a: 1 } }))).toBe('data: {"a":1}\n\n');
    expect(new TextDecoder().decode(frame({ data: "[DONE]" }))).toBe("data: [DONE]\n\n");
    const res = sseResponse(async (sink) => {
      sink.send({ n: 1 });
      sink.send("[DONE]");
    });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect(await res.text()).toBe('data: {"n":1}\n\ndata: [DONE]\n\n');

    let aborted = false;
    const res2 = sseResponse(async (sink) => {
      sink.send({ first: true });
      await new Promise<void>((resolve) => sink.signal.addEventListener("abort", () => resolve()));
      aborted = true;
    });
    const reader = res2.body!.getReader();
    await reader.read();
    await reader.cancel();
    await Bun.sleep(10);
    expect(aborted).toBe(true);
  });

  test("event, id and retry fields; each line of data its own data line; fields that would break the framing refused", () => {
    const text = (e: Parameters<typeof frame>[0]) => new TextDecoder().decode(frame(e));
    expect(text({ event: "response.created", id: "7", retry: 1000, data: { type: "response.created" } }))
      .toBe('event: response.created\nid: 7\nretry: 1000\ndata: {"type":"response.created"}\n\n');
    expect(text({ data: "a\nb\r\nc" })).toBe("data: a\ndata: b\ndata: c\n\n");
    expect(() => frame({ event: "a\nb", data: 1 })).toThrow(RangeError);
    expect(() => frame({ id: "x\r", data: 1 })).toThrow(RangeError);
    expect(() => frame({ retry: -1, data: 1 })).toThrow(RangeError);
  });

  test("backpressure: write waits while the client has not read; a client that stops reading is dropped", async () => {
    const chunk = "x".repeat(100_000);
    let waited = false;
    let aborted = false;
    const res = sseResponse(async (sink) => {
      sink.signal.addEventListener("abort", () => { aborted = true; });
      const first = sink.send(chunk);
      waited = await Promise.race([first.then(() => false), Bun.sleep(20).then(() => true)]);
      for (let i = 0; i * chunk.length < MAX_UNREAD_BYTES + chunk.length && !sink.signal.aborted; i++) void sink.send(chunk);
    });
    const reader = res.body!.getReader();
    await Bun.sleep(50);
    expect(waited).toBe(true);
    expect(aborted).toBe(true);
    await reader.read().catch(() => undefined);
  });

  test("a producer that throws ends with an error event", async () => {
    const res = sseResponse(async () => {
      throw new Error("boom");
    });
    const text = await res.text();
    expect(text).toMatch(/^data: \{"error":\{"message":"Internal error: boom","type":"server_error"/);
  });
});

describe("surface adapters", () => {
  const model: ServedModel = hostModel({ id: "stories", ref: STORIES }, { arch: "llama", nCtx: 256 });
  const result: GenerationResult = {
    status: "completed", text: ", there was", finishReason: "stop", timeToFirstTokenMs: 5, decodeMs: 10,
    tokens: [{ id: 29892, text: ",", logprob: -0.1 }, { id: 727, text: " there", logprob: -0.2 }, { id: 471, text: " was", logprob: -0.3 }],
    usage: { inputTokens: 5, cachedTokens: 0, outputTokens: 3 },
  };

  test("a Responses string input on a model without a template is the text after BOS", () => {
    const gen = responsesToGeneration({ model: "stories", input: "Once upon a time", temperature: 0 }, model);
    expect(gen.input).toEqual({ kind: "text", text: "Once upon a time" });
    expect(preparePrompt(model, gen).promptIds).toEqual([1, 9038, 2501, 263, 931]);
  });

  test("chat and messages with one user turn prompt like the plain text (no template on stories15M)", () => {
    const chat = chatToGeneration({ model: "stories", messages: [{ role: "user", content: "Once upon a time" }] }, model);
    const msgs = messagesToGeneration({ model: "stories", max_tokens: 8, messages: [{ role: "user", content: [{ type: "text", text: "Once upon a time" }] }] }, model);
    expect(preparePrompt(model, chat).promptIds).toEqual([1, 9038, 2501, 263, 931]);
    expect(preparePrompt(model, msgs)).toEqual({ promptIds: [1, 9038, 2501, 263, 931], maxTokens: 8 });
  });

  test("on a model with a template, a string input is one user message, rendered as chat and messages render it", () => {
    // stories15M's tokenizer with SmolLM2's template: what matters is that all four prompts agree.
    const info = { template: readFileSync(join(import.meta.dir, "fixtures/chat-templates/smollm2-instruct.jinja"), "utf8"), bosToken: "<|im_start|>", eosToken: "<|im_end|>" };
    const templated: ServedModel = { ...model, renderChat: (messages) => renderChat(info, messages.map((m) => ({ role: m.role, content: m.content }))) };
    const text = "Tell me a story.";
    const prompts = [
      responsesToGeneration({ model: "stories", input: text }, templated),
      responsesToGeneration({ model: "stories", input: [{ role: "user", content: text }] }, templated),
      chatToGeneration({ model: "stories", messages: [{ role: "user", content: text }] }, templated),
      messagesToGeneration({ model: "stories", max_tokens: 8, messages: [{ role: "user", content: text }] }, templated),
    ].map((gen) => preparePrompt(templated, gen).promptIds);
    const rendered = renderChat(info, [{ role: "user", content: text }]);
    expect(rendered.text).toContain("<|im_start|>assistant");
    expect(prompts[0]).toEqual(templated.tokenizer.encode(rendered.text, { addBos: rendered.addBos, parseSpecial: rendered.parseSpecial }));
    for (const p of prompts.slice(1)) expect(p).toEqual(prompts[0]);
    expect(prompts[0]).not.toEqual(preparePrompt(model, responsesToGeneration({ model: "stories", input: text }, model)).promptIds);
  });

  test("a text's bytes over the longest token's bound its token count from below; past the context it is refused untokenized", () => {
    const longest = longestTokenBytes(model.tokenizer);
    expect(longest).toBeGreaterThan(4);
    for (const text of ["Once upon a time", "     spaces     ", "ünïcödé ✓ 日本語", "\n\n\t<s></s>", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]) {
      const ids = model.tokenizer.encode(text, { addBos: false });
      expect(Math.ceil(Buffer.byteLength(text, "utf8") / longest)).toBeLessThanOrEqual(ids.length);
    }
    const huge = responsesToGeneration({ model: "stories", input: "x".repeat(256 * longest) }, model);
    let err: unknown;
    try {
      preparePrompt(model, huge);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PromptTooLong);
    expect((err as Error).message).toContain("at least 256 tokens");
  });

  test("output budget is clamped to the context; an over-long prompt is refused", () => {
    const gen = responsesToGeneration({ model: "stories", input: "Once upon a time", max_output_tokens: 10_000 }, model);
    expect(preparePrompt(model, gen).maxTokens).toBe(256 - 5);
    expect(() => preparePrompt(model, { ...gen, input: { kind: "text", text: "word ".repeat(300) } })).toThrow(/context/);
  });

  test("images are refused on a text-only model, naming the part", () => {
    let err: ApiError | undefined;
    try {
      chatToGeneration({ model: "stories", messages: [{ role: "user", content: [{ type: "text", text: "a" }, { type: "image_url", image_url: { url: "http://x/y.png" } }] }] }, model);
    } catch (e) {
      err = e as ApiError;
    }
    expect(err?.param).toBe("messages[0].content[1]");
    expect(err?.status).toBe(400);
  });

  test("defaults, metadata and window", () => {
    const gen = responsesToGeneration({ model: "stories", input: "x", metadata: { completion_window: "asap", a: "b" }, include: ["message.output_text.logprobs"] }, model);
    expect(gen).toMatchObject({ temperature: 1, topP: 1, maxOutputTokens: null, logprobs: true, window: "asap", metadata: { a: "b" } });
    expect(responsesToGeneration({ model: "stories", input: "x" }, model).window).toBe("standard");
    expect(() => responsesToGeneration({ model: "stories", input: "x", metadata: { completion_window: "now" } }, model)).toThrow(/'asap', 'standard'/);
    expect(() => responsesToGeneration({ model: "stories", input: "x", metadata: { ["k".repeat(65)]: "v" } }, model)).toThrow(/at most 64/);
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]));
    expect(() => responsesToGeneration({ model: "stories", input: "x", metadata: many }, model)).toThrow(/at most 16/);
  });

  test("renders: chat completion, Anthropic message, Response object with logprobs and aliases", () => {
    const chat = renderChatCompletion("chatcmpl-x", 1, "stories", result);
    expect(chat.choices).toHaveLength(1);
    expect(chat.choices[0]).toMatchObject({ finish_reason: "stop", logprobs: null, message: { role: "assistant", content: ", there was", refusal: null } });
    expect(chat.usage).toEqual({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } });
    expect(chat).not.toHaveProperty("system_fingerprint");

    const mgen = messagesToGeneration({ model: "stories", max_tokens: 3, messages: [{ role: "user", content: "Once" }] }, model);
    expect(renderMessage("msg_x", "stories", result, mgen)).toEqual({
      id: "msg_x", type: "message", role: "assistant", content: [{ type: "text", text: ", there was" }], model: "stories",
      stop_reason: "end_turn", stop_sequence: null, usage: { input_tokens: 5, output_tokens: 3 },
    });

    const db = openDb(":memory:");
    const store = new ResponseStore(db);
    const gen = responsesToGeneration({ model: "stories", input: "Once", include: ["message.output_text.logprobs"], temperature: 0, max_output_tokens: 3 }, model);
    store.create({ id: "resp_x", surface: "responses", principal: { organizationId: DEFAULT_ORG.id, apiKeyId: null }, request: { model: "stories", input: "Once" }, generation: gen });
    const rec = store.finish("resp_x", { ...result, status: "incomplete", finishReason: "length" });
    const r = renderResponse(rec) as any;
    expect(r).toMatchObject({
      id: "resp_x", object: "response", status: "incomplete", incomplete_details: { reason: "max_output_tokens" },
      output_text: ", there was", temperature: 0, top_p: 1, max_output_tokens: 3, parallel_tool_calls: false,
      truncation: "disabled", store: true, background: false, error: null, metadata: {}, tool_choice: "auto",
      usage: { input_tokens: 5, output_tokens: 3, total_tokens: 8, prompt_tokens: 5, completion_tokens: 3, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } },
    });
    expect(r.output[0].content[0].logprobs.map((l: any) => [l.token, l.logprob])).toEqual([[",", -0.1], [" there", -0.2], [" was", -0.3]]);
    expect(r.output[0].content[0].logprobs[1].bytes).toEqual([32, 116, 104, 101, 114, 101]);
  });
});
