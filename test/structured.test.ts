// Structured outputs and tool calls end to end: the official SDKs against the real server on
// stories15M-q8_0 (a story model with no idea of JSON: whatever structure comes out is the
// grammar mask's doing), plus unit tests of the tool-call parser and the streaming hold-back.
// Schemas are checked by a small independent validator written here, not by the grammar code.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { MODEL_ID, envelope, post, startTestServer, type TestServer } from "./e2e-harness.ts";
import { ToolCallHoldback, parseToolCalls, toolCallFormatFor } from "../src/tool-calls.ts";
import { acquireDevice, loadModel } from "../src/engine/index.ts";
import { openModel } from "../src/engine/model/open.ts";
import { createTokenizer } from "../src/engine/tokenizer/index.ts";
import { applyTokenBitmask, createGrammarFactory, maskWords, type OutputConstraint } from "../src/engine/grammar/index.ts";
import { MODEL_PATH } from "./e2e-harness.ts";

setDefaultTimeout(120_000);

const PERSON = {
  type: "object",
  properties: { name: { type: "string", maxLength: 12 }, mood: { type: "string", enum: ["happy", "sad"] } },
  required: ["name", "mood"],
  additionalProperties: false,
};

/** PERSON's rules, checked by hand. */
function checkPerson(text: string) {
  const v = JSON.parse(text);
  expect(typeof v).toBe("object");
  expect(Object.keys(v).sort()).toEqual(["mood", "name"]);
  expect(typeof v.name).toBe("string");
  expect([...v.name].length).toBeLessThanOrEqual(12);
  expect(["happy", "sad"]).toContain(v.mood);
  return v;
}

const WEATHER_PARAMS = {
  type: "object",
  properties: { city: { type: "string", maxLength: 8 }, unit: { type: "string", enum: ["c", "f"] } },
  required: ["city", "unit"],
  additionalProperties: false,
};
function checkWeatherArgs(args: string) {
  const v = JSON.parse(args);
  expect(Object.keys(v).sort()).toEqual(["city", "unit"]);
  expect(typeof v.city).toBe("string");
  expect([...v.city].length).toBeLessThanOrEqual(8);
  expect(["c", "f"]).toContain(v.unit);
}

const BAD_SCHEMA = { type: "object", properties: { a: { type: "nope" } } };

describe("tool-call parser (data-driven formats)", () => {
  test("hermes: calls out, text around kept, several calls in order", () => {
    const text = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>';
    const out = parseToolCalls(text, "hermes", ["get_weather", "get_time"]);
    expect(out.calls).toEqual([{ name: "get_weather", arguments: '{"city":"Oslo"}' }, { name: "get_time", arguments: "{}" }]);
    expect(out.text).toBe("Let me check.");
  });

  test("hermes: malformed JSON, unknown tools, unclosed calls and non-object arguments stay text", () => {
    const cases = [
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": }\n</tool_call>',
      '<tool_call>\n{"name": "launch", "arguments": {}}\n</tool_call>',
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}',
      '<tool_call>{"name": "get_weather", "arguments": [1]}</tool_call>',
      '<tool_call>{"arguments": {}}</tool_call>',
      "no calls at all",
    ];
    for (const text of cases) expect(parseToolCalls(text, "hermes", ["get_weather"])).toEqual({ text, calls: [] });
    // A malformed call before a good one: the bad one stays text, the good one is parsed.
    const mixed = '<tool_call>oops</tool_call> then <tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>';
    expect(parseToolCalls(mixed, "hermes", ["get_weather"])).toEqual({ text: "<tool_call>oops</tool_call> then", calls: [{ name: "get_weather", arguments: '{"city":"Rome"}' }] });
  });

  test("llama3_json: bare objects with 'parameters', separated by ';', braces inside strings", () => {
    const text = '{"name": "get_weather", "parameters": {"city": "a}b{"}}; {"name": "get_time", "parameters": {}}';
    const out = parseToolCalls(text, "llama3_json", ["get_weather", "get_time"]);
    expect(out.calls).toEqual([{ name: "get_weather", arguments: '{"city":"a}b{"}' }, { name: "get_time", arguments: "{}" }]);
    expect(out.text).toBe("");
    const around = parseToolCalls('Sure: {"name": "get_time", "parameters": {}} done', "llama3_json", ["get_time"]);
    expect(around).toEqual({ text: "Sure:  done", calls: [{ name: "get_time", arguments: "{}" }] });
    for (const bad of ['{"name": "get_time", "parameters": {', '{"name": 3, "parameters": {}}', '{"name": "get_time", "parameters": "x"}']) {
      expect(parseToolCalls(bad, "llama3_json", ["get_time"])).toEqual({ text: bad, calls: [] });
    }
  });

  test("format from the chat template: ChatML/hermes and no template -> hermes, Llama 3 -> llama3_json", () => {
    expect(toolCallFormatFor(undefined)).toBe("hermes");
    expect(toolCallFormatFor("{% for m in messages %}<|im_start|>{{ m.role }}\n<tool_call>{% endfor %}")).toBe("hermes");
    expect(toolCallFormatFor("<|start_header_id|>{{ message.role }}<|end_header_id|>")).toBe("llama3_json");
  });

  test("streaming hold-back: text flows until a call may start; the call is held whole; split markers are caught", () => {
    const h = new ToolCallHoldback("hermes");
    const sent: string[] = [];
    for (const piece of ["Hello", " there <tool", "_c", "all>\n{\"name\": \"f\", ", "\"arguments\": {}}\n</tool_call>"]) sent.push(h.push(piece));
    expect(sent.join("")).toBe("Hello there ");
    expect(parseToolCalls(h.rest(), "hermes", ["f"]).calls).toEqual([{ name: "f", arguments: "{}" }]);
    // A '<' that turns out not to open a call is released.
    const plain = new ToolCallHoldback("hermes");
    expect(plain.push("a <")).toBe("a ");
    expect(plain.push("b> c")).toBe("<b> c");
    expect(plain.rest()).toBe("");
  });
});

describe("the GPU mask in the engine", () => {
  test("masked sampling on the GPU picks what host-side masking of the same logits picks (greedy), ids and all", async () => {
    const file = openModel(MODEL_PATH);
    const tok = createTokenizer(file);
    const device = await acquireDevice();
    const model = await loadModel(device, file);
    try {
      const factory = await createGrammarFactory(tok, model.nVocab);
      const prompt = tok.encode("Once upon a time, a girl named Lily had a pet. Her details:", { addBos: true });
      // (One schema keeps this quick; forced tool calls go through the same mask path, below over HTTP.)
      const constraints: OutputConstraint[] = [{ type: "json_schema", schema: PERSON, strict: true }];
      for (const c of constraints) {
        // The engine's path: mask uploaded each step, logits masked and sampled on the GPU.
        const gpu: number[] = [];
        const m1 = (await factory.compile(c)).matcher();
        const gen = model.generate(prompt, { maxTokens: 80, sampling: { temperature: 0, topP: 1 }, stopIds: tok.stopIds }, m1);
        let done = await gen.next();
        for (; !done.done; done = await gen.next()) gpu.push(done.value.id);
        expect(done.value.finishReason).toBe("stop");
        expect(m1.isTerminated()).toBe(true);
        m1.dispose();
        // The reference: full logits read back, masked on the host, argmax (lowest id on ties).
        const host: number[] = [];
        const m2 = (await factory.compile(c)).matcher();
        const mask = new Uint32Array(maskWords(model.nVocab));
        model.reset();
        let logits = await model.evalLogits(prompt);
        for (;;) {
          m2.fillNextTokenBitmask(mask);
          expect(applyTokenBitmask(logits, mask)).toBeGreaterThan(0);
          let best = 0;
          for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
          expect(m2.acceptToken(best)).toBe(true);
          if (tok.stopIds.includes(best)) break;
          host.push(best);
          logits = await model.evalLogits([best]);
        }
        m2.dispose();
        expect(gpu).toEqual(host);
        checkPerson(tok.decode(gpu));
      }
    } finally {
      model.dispose();
      device.destroy();
      file.close();
    }
  });
});

describe("over HTTP with the official SDKs (stories15M-q8_0)", () => {
  let server: TestServer;
  let openai: OpenAI;
  let anthropic: Anthropic;
  beforeAll(async () => {
    server = await startTestServer();
    openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: server.url, authToken: "unused", maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
  });

  const messages = [{ role: "user" as const, content: "Tell me about a girl." }];

  test("chat response_format json_schema: content parses and satisfies the schema (greedy and sampled)", async () => {
    for (const temperature of [0, 1]) {
      const r = await openai.chat.completions.create({
        model: MODEL_ID, messages, temperature, max_completion_tokens: 48,
        response_format: { type: "json_schema", json_schema: { name: "person", schema: PERSON, strict: true } },
      });
      expect(r.choices[0].finish_reason).toBe("stop");
      checkPerson(r.choices[0].message.content!);
    }
  });

  test("chat response_format json_object: content is a JSON object", async () => {
    const r = await openai.chat.completions.create({
      model: MODEL_ID, messages, temperature: 0, max_completion_tokens: 24, response_format: { type: "json_object" },
    });
    const text = r.choices[0].message.content!;
    // Within 24 tokens the object may be cut short; what is there is a JSON object's start.
    expect(text.startsWith("{")).toBe(true);
    if (r.usage!.completion_tokens < 24) expect(typeof JSON.parse(text)).toBe("object");
  });

  test("responses text.format json_schema: output_text parses and satisfies the schema", async () => {
    const r = await openai.responses.create({
      model: MODEL_ID, input: "Once upon a time", temperature: 0, max_output_tokens: 48,
      text: { format: { type: "json_schema", name: "person", schema: PERSON, strict: true } },
    });
    expect(r.status).toBe("completed");
    checkPerson(r.output_text);
    expect(r.text?.format).toMatchObject({ type: "json_schema", name: "person" });
    // The stored record runs the same constraint: GET renders the same output.
    const again = await openai.responses.retrieve(r.id);
    expect(again.output_text).toBe(r.output_text);
  });

  test("messages output_config.format: the text block parses and satisfies the schema", async () => {
    const m = await anthropic.messages.create({
      model: MODEL_ID, max_tokens: 48, temperature: 0, messages,
      output_config: { format: { type: "json_schema", schema: PERSON } },
    } as Anthropic.MessageCreateParamsNonStreaming);
    expect(m.content[0].type).toBe("text");
    checkPerson((m.content[0] as Anthropic.TextBlock).text);
  });

  test("a schema that cannot compile is a 400 naming the parameter, on every surface, and stores nothing", async () => {
    const cases: [string, unknown, string][] = [
      ["/v1/chat/completions", { model: MODEL_ID, messages, response_format: { type: "json_schema", json_schema: { name: "x", schema: BAD_SCHEMA } } }, "response_format.json_schema.schema"],
      ["/v1/responses", { model: MODEL_ID, input: "hi", text: { format: { type: "json_schema", name: "x", schema: BAD_SCHEMA } } }, "text.format.schema"],
      ["/v1/messages", { model: MODEL_ID, max_tokens: 8, messages, output_config: { format: { type: "json_schema", schema: BAD_SCHEMA } } }, "output_config.format.schema"],
      ["/v1/chat/completions", { model: MODEL_ID, messages, tools: [{ type: "function", function: { name: "f", parameters: BAD_SCHEMA } }], tool_choice: "required" }, "tools"],
      ["/v1/chat/completions", { model: MODEL_ID, messages, tools: [{ type: "function", function: { name: "f" } }], tool_choice: { type: "function", function: { name: "g" } } }, "tool_choice"],
      ["/v1/responses", { model: MODEL_ID, input: "hi", tool_choice: "required" }, "tool_choice"],
    ];
    const rows = () => (server.ctx.auth.db.$client.query("SELECT count(*) AS n FROM responses").get() as { n: number }).n;
    const before = rows();
    for (const [path, body, param] of cases) {
      const res = await post(`${server.url}${path}`, body);
      expect(res.status).toBe(400);
      const err = envelope(res.json);
      expect(err).toMatchObject({ type: "invalid_request_error", param });
      if (param.endsWith("schema")) expect(err.message).toContain("nope");
    }
    // Odd shapes of the new parameters: 400, never 500.
    const odd: [string, unknown][] = [
      ["/v1/chat/completions", { model: MODEL_ID, messages, response_format: { type: "json_schema" } }],
      ["/v1/chat/completions", { model: MODEL_ID, messages, response_format: { type: "json_schema", json_schema: { name: "x", schema: "str" } } }],
      ["/v1/chat/completions", { model: MODEL_ID, messages, tools: [{ type: "function", function: { name: "f" } }], tool_choice: { type: "function" } }],
      ["/v1/chat/completions", { model: MODEL_ID, messages, tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }, { type: "function", function: { name: "f" } }], tool_choice: "required" }],
      ["/v1/responses", { model: MODEL_ID, input: "hi", text: { format: { type: "json_schema", name: "x" } } }],
      ["/v1/responses", { model: MODEL_ID, input: "hi", tools: [{ type: "function", name: "f" }], tool_choice: { type: "function" } }],
      ["/v1/messages", { model: MODEL_ID, max_tokens: 8, messages, output_config: { format: { type: "json_schema" } } }],
      ["/v1/messages", { model: MODEL_ID, max_tokens: 8, messages, output_config: { format: { type: "json_object" } } }],
    ];
    for (const [path, body] of odd) {
      const res = await post(`${server.url}${path}`, body);
      expect([path, res.status]).toEqual([path, 400]);
      envelope(res.json);
    }
    expect(rows()).toBe(before);
  });

  const weatherTool = {
    type: "function" as const,
    function: { name: "get_weather", description: "Weather for a city", parameters: WEATHER_PARAMS, strict: true },
  };

  test("chat tool_choice required: a parsed tool call, finish_reason tool_calls (JSON)", async () => {
    const r = await openai.chat.completions.create({
      model: MODEL_ID, messages, temperature: 0, max_completion_tokens: 96, tools: [weatherTool], tool_choice: "required",
      // One call, then the model's EOS (with parallel calls a story model writes calls until the limit).
      parallel_tool_calls: false,
    });
    const choice = r.choices[0];
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.tool_calls).toHaveLength(1);
    const call = choice.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call).toMatchObject({ type: "function", function: { name: "get_weather" } });
    expect(call.id).toMatch(/^call_/);
    checkWeatherArgs(call.function.arguments);
    expect(choice.message.content ?? "").not.toContain("<tool_call>");
  });

  test("chat tool_choice named function, streamed: one atomic delta per call, then finish_reason tool_calls", async () => {
    const stream = await openai.chat.completions.create({
      model: MODEL_ID, messages, temperature: 0.8, max_completion_tokens: 96, stream: true,
      tools: [weatherTool, { type: "function", function: { name: "get_time", parameters: { type: "object", properties: {} } } }],
      tool_choice: { type: "function", function: { name: "get_weather" } },
    });
    const callDeltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let content = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (!c) continue;
      if (c.delta.content) content += c.delta.content;
      if (c.delta.tool_calls) callDeltas.push(...c.delta.tool_calls);
      if (c.finish_reason) finish = c.finish_reason;
    }
    expect(finish).toBe("tool_calls");
    expect(content).not.toContain("<tool_call>");
    expect(callDeltas).toHaveLength(1);
    const d = callDeltas[0];
    expect(d).toMatchObject({ index: 0, type: "function", function: { name: "get_weather" } });
    expect(d.id).toMatch(/^call_/);
    checkWeatherArgs(d.function!.arguments!);
  });

  test("responses tool_choice required: function_call output items, stable on retrieve", async () => {
    const r = await openai.responses.create({
      model: MODEL_ID, input: [{ role: "user", content: "What is the weather?" }], temperature: 0, max_output_tokens: 96,
      tools: [{ type: "function", name: "get_weather", parameters: WEATHER_PARAMS, strict: true }], tool_choice: "required",
    });
    const calls = r.output.filter((o): o is OpenAI.Responses.ResponseFunctionToolCall => o.type === "function_call");
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ type: "function_call", name: "get_weather" });
    expect(calls[0].call_id).toMatch(/^call_/);
    expect(calls[0].id).toMatch(/^fc_/);
    checkWeatherArgs(calls[0].arguments);
    expect(r.output_text).not.toContain("<tool_call>");
    const again = await openai.responses.retrieve(r.id);
    expect(again.output).toEqual(r.output);
  });

  test("responses custom tool: a custom_tool_call item with text input; a replayed call and its output are accepted", async () => {
    const tools = [{ type: "custom" as const, name: "run_sql", description: "Runs a SQL query." }];
    const r = await openai.responses.create({
      model: MODEL_ID, input: [{ role: "user", content: "How many users are there?" }], temperature: 0, max_output_tokens: 64,
      tools, tool_choice: { type: "custom", name: "run_sql" },
    });
    const calls = r.output.filter((o): o is OpenAI.Responses.ResponseCustomToolCall => o.type === "custom_tool_call");
    expect(calls).toHaveLength(1);
    expect(r.output.some((o) => o.type === "function_call")).toBe(false);
    expect(calls[0]).toMatchObject({ type: "custom_tool_call", name: "run_sql" });
    expect(calls[0].call_id).toMatch(/^call_/);
    expect(calls[0].id).toMatch(/^ctc_/);
    expect(typeof calls[0].input).toBe("string");
    expect(calls[0].input).not.toContain('"input"');
    const next = await openai.responses.create({
      model: MODEL_ID, temperature: 0, max_output_tokens: 8, tools,
      input: [
        { role: "user", content: "How many users are there?" },
        { type: "custom_tool_call", call_id: calls[0].call_id, name: "run_sql", input: calls[0].input },
        { type: "custom_tool_call_output", call_id: calls[0].call_id, output: "42" },
      ],
    });
    expect(next.status).toBe("incomplete");
    expect(next.output.length).toBeGreaterThan(0);
  });
});
