// Thinking models end to end: a random qwen3 model carrying Qwen3's real chat template, served by
// the real server. Its output is forced by a grammar (structured_outputs.regex) to be a
// <think>...</think> block and an answer; every surface must hand the two back apart, streamed
// and not, and count the block's tokens as reasoning. The effort switch must render the
// template as Python Jinja2 renders it with enable_thinking off and on.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { envelope, post, startTestServer, type TestServer } from "./e2e-harness.ts";
import { findRandomModel, writeRandomGGUF } from "./support/random-gguf.ts";
import { hostModel, preparePrompt } from "../src/scheduler/models.ts";
import { chatToGeneration } from "../src/api/chat.ts";
import { responsesToGeneration } from "../src/api/responses.ts";

setDefaultTimeout(120_000);

const FIXTURES = join(import.meta.dir, "fixtures", "chat-templates");
const TEMPLATE = readFileSync(join(FIXTURES, "qwen3.jinja"), "utf8");
const EXPECTED = JSON.parse(readFileSync(join(FIXTURES, "expected.json"), "utf8")) as Record<string, { text: string }>;
const MODEL = "qwen3-think";
const WORDS = "[a-z]{1,8}( [a-z]{1,8}){0,4}";
const THINK_THEN_ANSWER = { regex: `<think>\n${WORDS}\n</think>\n\n${WORDS}` };
const PHRASE = /^[a-z]{1,8}( [a-z]{1,8}){0,4}$/;
const question = [{ role: "user" as const, content: "What is 2+2?" }];

let dir: string;
let modelPath: string;
let server: TestServer;
let openai: OpenAI;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "valar-reasoning-"));
  modelPath = writeRandomGGUF(findRandomModel("qwen3-f32"), dir, { chatTemplate: TEMPLATE }).path;
  server = await startTestServer({ models: [{ id: MODEL, ref: modelPath }] });
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused-auth-is-off", maxRetries: 0 });
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The greedy chat completion the grammar forces; every other surface must agree with it. */
async function forcedChat() {
  const body = { model: MODEL, messages: question, temperature: 0, max_completion_tokens: 160, structured_outputs: THINK_THEN_ANSWER };
  return openai.chat.completions.create(body as OpenAI.ChatCompletionCreateParamsNonStreaming) as Promise<OpenAI.ChatCompletion & {
    choices: { message: { reasoning_content?: string | null } }[];
  }>;
}

describe("a forced <think> block comes back as reasoning", () => {
  test("chat completions: reasoning_content, content without the block, reasoning_tokens", async () => {
    const r = await forcedChat();
    const m = r.choices[0].message;
    expect(m.reasoning_content).toMatch(PHRASE);
    expect(m.content).toMatch(PHRASE);
    const used = r.usage!.completion_tokens_details!.reasoning_tokens!;
    expect(used).toBeGreaterThan(2);
    expect(used).toBeLessThan(r.usage!.completion_tokens);
  });

  test("chat completions streamed: reasoning_content deltas first, then content; same parts and usage", async () => {
    const whole = await forcedChat();
    const stream = await openai.chat.completions.create({
      model: MODEL, messages: question, temperature: 0, max_completion_tokens: 160, structured_outputs: THINK_THEN_ANSWER,
      stream: true, stream_options: { include_usage: true },
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    let reasoning = "";
    let content = "";
    let reasoningDeltas = 0;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      const d = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined;
      if (d?.reasoning_content) {
        expect(content).toBe(""); // no answer text before the reasoning is over
        reasoning += d.reasoning_content;
        reasoningDeltas++;
      }
      if (d?.content) content += d.content;
    }
    expect(reasoningDeltas).toBeGreaterThan(1); // streamed as it was produced, not at the end
    expect(reasoning).toBe(whole.choices[0].message.reasoning_content!);
    expect(content).toBe(whole.choices[0].message.content!);
    expect(usage!.completion_tokens_details).toEqual(whole.usage!.completion_tokens_details!);
  });

  test("responses, sync and background: a reasoning item before the message; output_text is the answer", async () => {
    const chat = await forcedChat();
    const body = { model: MODEL, input: "What is 2+2?", temperature: 0, max_output_tokens: 160, structured_outputs: THINK_THEN_ANSWER };
    const sync = await openai.responses.create(body as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    let bg = await openai.responses.create({ ...body, background: true } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    while (bg.status === "queued" || bg.status === "in_progress") {
      await Bun.sleep(50);
      bg = await openai.responses.retrieve(bg.id);
    }
    for (const r of [sync, bg]) {
      expect(r.status).toBe("completed");
      expect(r.output.map((o) => o.type)).toEqual(["reasoning", "message"]);
      const item = r.output[0] as OpenAI.Responses.ResponseReasoningItem;
      expect(item.summary).toEqual([]);
      expect(item.content).toEqual([{ type: "reasoning_text", text: chat.choices[0].message.reasoning_content! }]);
      expect(r.output_text).toBe(chat.choices[0].message.content!);
      expect(r.usage!.output_tokens_details.reasoning_tokens).toBe(chat.usage!.completion_tokens_details!.reasoning_tokens!);
    }
  });

  test("messages: whatever the model writes, a leading block is a thinking block, never text", async () => {
    const anthropic = new Anthropic({ baseURL: server.url, authToken: "unused", maxRetries: 0 });
    // Messages has no grammar parameter: unforced output, so only the shape is checked.
    const msg = await anthropic.messages.create({ model: MODEL, max_tokens: 8, messages: question });
    expect(msg.content[msg.content.length - 1].type).toBe("text");
    for (const b of msg.content) if (b.type === "text") expect(b.text.trimStart().startsWith("<think>")).toBe(false);
  });

  test("history: reasoning_content of an earlier turn is accepted and dropped as the template drops it", async () => {
    const gen = chatToGeneration({
      model: MODEL,
      messages: [{ role: "user", content: "What is 2+2?" }, { role: "assistant", content: "4", reasoning_content: "Two and two make four." }, { role: "user", content: "And 3+3?" }],
    }, server.ctx.models.get(MODEL)!);
    const model = server.ctx.models.get(MODEL)!;
    const want = EXPECTED["qwen3 earlier reasoning dropped"].text;
    expect(preparePrompt(model, gen).promptIds).toEqual(model.tokenizer.encode(want, { parseSpecial: true }));
  });

  test("a grammar that does not compile is a 400 naming structured_outputs; so is one beside a response format", async () => {
    const bad = await post(`${server.url}/v1/chat/completions`, { model: MODEL, messages: question, structured_outputs: { regex: "(ab" } });
    expect(bad.status).toBe(400);
    expect(envelope(bad.json)).toMatchObject({ param: "structured_outputs", code: "invalid_grammar" });
    const both = await post(`${server.url}/v1/responses`, {
      model: MODEL, input: "x", structured_outputs: { grammar: 'root ::= "a"' }, text: { format: { type: "json_schema", name: "x", schema: { type: "object" } } },
    });
    expect(both.status).toBe(400);
    expect(envelope(both.json).param).toBe("structured_outputs");
    const none = await post(`${server.url}/v1/chat/completions`, { model: MODEL, messages: question, structured_outputs: {} });
    expect(envelope(none.json).param).toBe("structured_outputs");
  });
});

describe("reasoning effort switches thinking through the template", () => {
  // The same conversation as the Jinja2 fixtures' "qwen3 enable_thinking" cases.
  const conversation = [{ role: "system" as const, content: "You are a terse assistant." }, { role: "user" as const, content: "What is 2+2?" }];
  const model = () => hostModel({ id: MODEL, ref: modelPath }, { arch: "qwen3", nCtx: 256 });
  const ids = (text: string) => model().tokenizer.encode(text, { parseSpecial: true });

  const efforts: [string | undefined, string][] = [
    ["none", "qwen3 enable_thinking false"], ["minimal", "qwen3 enable_thinking false"],
    ["low", "qwen3 enable_thinking true"], ["high", "qwen3 enable_thinking true"], [undefined, "qwen3 enable_thinking true"],
  ];
  for (const [effort, fixture] of efforts) {
    test(`effort ${effort ?? "absent"} renders as "${fixture}" (chat and responses)`, () => {
      const m = model();
      const chat = chatToGeneration({ model: MODEL, messages: conversation, ...(effort ? { reasoning_effort: effort as "none" } : {}) }, m);
      const resp = responsesToGeneration({ model: MODEL, input: conversation, ...(effort ? { reasoning: { effort: effort as "none" } } : {}) }, m);
      for (const gen of [chat, resp]) expect(preparePrompt(m, gen).promptIds).toEqual(ids(EXPECTED[fixture].text));
      expect(chat.reasoning).toEqual({ format: "think", startsInside: false, thinks: !fixture.endsWith("false") });
    });
  }

  test("thinking off on the server: the prompt ends with the empty block, and the answer is all content", async () => {
    const r = await post(`${server.url}/v1/chat/completions`, { model: MODEL, messages: conversation, reasoning_effort: "none", temperature: 0, max_completion_tokens: 4 });
    expect(r.status).toBe(200);
    expect(r.json.usage.prompt_tokens).toBe(ids(EXPECTED["qwen3 enable_thinking false"].text).length);
    expect(r.json.choices[0].message).toHaveProperty("reasoning_content");
  });

  test("a response format leaves a thinking model its block; with thinking off it holds from the first token", () => {
    const m = model();
    const format = { type: "json_schema" as const, json_schema: { name: "x", schema: { type: "object" } } };
    const on = chatToGeneration({ model: MODEL, messages: conversation, response_format: format }, m);
    expect(on.constraint).toEqual({ type: "after_reasoning", open: "<think>", close: "</think>", then: { type: "json_schema", schema: { type: "object" } } });
    const off = chatToGeneration({ model: MODEL, messages: conversation, response_format: format, reasoning_effort: "none" }, m);
    expect(off.constraint).toEqual({ type: "json_schema", schema: { type: "object" } });
    // A grammar of structured_outputs is the whole output, block included.
    const grammar = responsesToGeneration({ model: MODEL, input: "x", structured_outputs: THINK_THEN_ANSWER }, m);
    expect(grammar.constraint).toEqual({ type: "grammar", syntax: "regex", definition: THINK_THEN_ANSWER.regex });
  });

  test("thinking off and a response format on the server: the answer is the JSON, nothing is reasoning", async () => {
    const r = await post(`${server.url}/v1/chat/completions`, {
      model: MODEL, messages: conversation, reasoning_effort: "none", temperature: 0, max_completion_tokens: 40,
      response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "object", properties: { a: { type: "boolean" } }, required: ["a"] } } },
    });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.json.choices[0].message.content)).toHaveProperty("a");
    expect(r.json.choices[0].message.reasoning_content).toBeNull();
    expect(r.json.usage.completion_tokens_details.reasoning_tokens).toBe(0);
  });

  test("a model without thinking support accepts the effort and ignores it", async () => {
    const stories = hostModel({ id: "s", ref: join(import.meta.dir, "../../shared/models/stories15M/stories15M-q8_0.gguf") }, { arch: "llama", nCtx: 256 });
    const gen = chatToGeneration({ model: "s", messages: question, reasoning_effort: "high" }, stories);
    expect(gen.reasoning).toBeNull();
    expect(preparePrompt(stories, gen).promptIds).toEqual(preparePrompt(stories, chatToGeneration({ model: "s", messages: question }, stories)).promptIds);
  });
});
