// Every parameter API.md rejects, on every surface, against the real server: status 400, the
// OpenAI envelope, and `param` naming it. Then out-of-range values, wrong types, malformed
// bodies, unknown models and routes, and the body-size limit: never a 500.
//
// The lists below are written from API.md, independently of src/api/unsupported.ts, so a rule
// missing from the table fails here.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { MODEL_ID, envelope, post, startTestServer, type TestServer } from "./e2e-harness.ts";

setDefaultTimeout(60_000);

let server: TestServer;
const BODY_LIMIT = 64 * 1024;

beforeAll(async () => {
  server = await startTestServer({ maxBodyBytes: BODY_LIMIT });
});
afterAll(async () => {
  await server?.close();
});

const base = {
  responses: { model: MODEL_ID, input: "Once upon a time", max_output_tokens: 1 },
  chat: { model: MODEL_ID, messages: [{ role: "user", content: "Once upon a time" }], max_completion_tokens: 1 },
  messages: { model: MODEL_ID, max_tokens: 1, messages: [{ role: "user", content: "Once upon a time" }] },
} as const;
const path = { responses: "/v1/responses", chat: "/v1/chat/completions", messages: "/v1/messages" } as const;
type Surface = keyof typeof base;

/** [surface, fields merged over a valid body, expected param, text the message must contain] */
type Case = [Surface, Record<string, unknown>, string, string?];

const SERVER_TOOLS = ["web_search", "file_search", "code_interpreter", "computer_use", "mcp", "image_generation", "shell", "apply_patch"];
const REJECTED_INCLUDES = ["reasoning.encrypted_content", "web_search_call.action.sources", "code_interpreter_call.outputs", "computer_call_output.output.image_url", "file_search_call.results"];

const REJECTED: Case[] = [
  // POST /v1/responses
  ["responses", { instructions: "Be brief." }, "instructions"],
  ["responses", { previous_response_id: "resp_abc" }, "previous_response_id"],
  ["responses", { conversation: "conv_abc" }, "conversation"],
  ["responses", { prompt: { id: "pmpt_abc" } }, "prompt"],
  ["responses", { parallel_tool_calls: true }, "parallel_tool_calls"],
  ...SERVER_TOOLS.map((type): Case => ["responses", { tools: [{ type }] }, "tools[0].type", type]),
  ["responses", { text: { format: { type: "json_object" } } }, "text.format.type", "json_schema"],
  ["responses", { input: [{ role: "user", content: [{ type: "input_audio", input_audio: { data: "", format: "wav" } }] }] }, "input[0].content[0].type"],
  ["responses", { input: [{ role: "user", content: [{ type: "input_file", file_id: "file_1" }] }] }, "input[0].content[0].type"],
  ["responses", { input: [{ role: "user", content: [{ type: "input_text", text: "a" }, { type: "input_image", image_url: "https://example.com/a.png" }] }] }, "input[0].content[1]", "image"],
  ...REJECTED_INCLUDES.map((v): Case => ["responses", { include: [v] }, "include[0]", v]),
  ["responses", { store: false }, "store"],
  ["responses", { truncation: "auto" }, "truncation"],
  ["responses", { stream: true }, "stream"],
  ["responses", { service_tier: "flex" }, "service_tier"],
  // POST /v1/chat/completions
  ...["frequency_penalty", "presence_penalty", "top_logprobs", "seed"].map((p): Case => ["chat", { [p]: 1 }, p]),
  ["chat", { logit_bias: { "50256": -100 } }, "logit_bias"],
  ["chat", { stop: ["\n"] }, "stop"],
  ["chat", { logprobs: true }, "logprobs"],
  ["chat", { verbosity: "low" }, "verbosity"],
  ["chat", { audio: { voice: "alloy", format: "wav" } }, "audio"],
  ["chat", { prediction: { type: "content", content: "x" } }, "prediction"],
  ["chat", { stream_options: { include_usage: true } }, "stream_options", "stream"],
  ["chat", { stream: false, stream_options: {} }, "stream_options", "stream"],
  ["chat", { web_search_options: {} }, "web_search_options"],
  ["chat", { messages: [{ role: "user", content: [{ type: "input_audio", input_audio: { data: "", format: "wav" } }] }] }, "messages[0].content[0].type"],
  ["chat", { max_tokens: 5 }, "max_tokens", "max_completion_tokens"],
  ["chat", { functions: [{ name: "f", parameters: {} }] }, "functions", "tools"],
  ["chat", { function_call: "auto" }, "function_call", "tool_choice"],
  ["chat", { n: 2 }, "n"],
  ["chat", { modalities: ["text", "audio"] }, "modalities"],
  ["chat", { store: false }, "store"],
  ["chat", { service_tier: "priority" }, "service_tier"],
  ["chat", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/a.png" } }] }] }, "messages[0].content[0]", "image"],
  // POST /v1/messages
  ["messages", { system: "Be brief." }, "system"],
  ["messages", { thinking: { type: "enabled", budget_tokens: 1024 } }, "thinking"],
  ["messages", { stop_sequences: ["\n"] }, "stop_sequences"],
  ["messages", { top_k: 5 }, "top_k"],
  ["messages", { service_tier: "auto" }, "service_tier"],
  ["messages", { inference_geo: "us" }, "inference_geo"],
  ["messages", { stream: true }, "stream"],
  ["messages", { messages: [{ role: "user", content: [{ type: "document", source: { type: "text", media_type: "text/plain", data: "x" } }] }] }, "messages[0].content[0].type"],
  ["messages", { messages: [{ role: "assistant", content: [{ type: "tool_use", id: "t", name: "f", input: {} }] }] }, "messages[0].content[0].type"],
  ["messages", { messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: "t", content: "x" }] }] }, "messages[0].content[0].type"],
  ["messages", { messages: [{ role: "user", content: [{ type: "image", source: { type: "url", url: "https://example.com/a.png" } }] }] }, "messages[0].content[0]", "image"],
];

/** The request (the surface's minimal body plus `fields`) is a 400 naming `param` (and `mention`). */
async function expectRejected(surface: keyof typeof path, fields: Record<string, unknown>, param: string, mention?: string) {
  const res = await post(server.url + path[surface], { ...base[surface], ...fields });
  expect(res.status).toBe(400);
  const err = envelope(res.json);
  expect(err.type).toBe("invalid_request_error");
  expect(err.param).toBe(param);
  if (mention) expect(err.message).toContain(mention);
}

describe("every rejected parameter of API.md", () => {
  for (const [surface, fields, param, mention] of REJECTED) {
    test(`${surface} ${JSON.stringify(fields).slice(0, 70)} -> 400 param ${param}`, () => expectRejected(surface, fields, param, mention));
  }
});

describe("chat: a rejected parameter sent as null is accepted", () => {
  const nullable = ["frequency_penalty", "presence_penalty", "logit_bias", "stop", "seed", "top_logprobs", "logprobs", "verbosity", "audio", "prediction", "web_search_options", "max_tokens", "functions", "function_call"];
  test(nullable.join(", "), async () => {
    const res = await post(server.url + path.chat, { ...base.chat, ...Object.fromEntries(nullable.map((p) => [p, null])) });
    expect(res.status).toBe(200);
    expect(res.json.object).toBe("chat.completion");
  });
});

const OUT_OF_RANGE: Case[] = [
  ["responses", { temperature: 2.01 }, "temperature"],
  ["responses", { temperature: -0.1 }, "temperature"],
  ["responses", { top_p: 1.5 }, "top_p"],
  ["responses", { max_output_tokens: 0 }, "max_output_tokens"],
  ["responses", { max_output_tokens: 2.5 }, "max_output_tokens"],
  ["responses", { user: "u".repeat(257) }, "user"],
  ["responses", { input: "" }, "input"],
  ["responses", { input: [] }, "input"],
  ["responses", { metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) }, "metadata"],
  ["responses", { metadata: { ["k".repeat(65)]: "v" } }, `metadata.${"k".repeat(65)}`],
  ["responses", { metadata: { k: "v".repeat(513) } }, "metadata.k"],
  ["responses", { metadata: { k: 1 } }, "metadata.k"],
  ["responses", { metadata: { completion_window: "tomorrow" } }, "metadata.completion_window", "'asap', 'standard'"],
  ["responses", { reasoning: { effort: "extreme" } }, "reasoning.effort"],
  ["chat", { temperature: 3 }, "temperature"],
  ["chat", { top_p: -1 }, "top_p"],
  ["chat", { max_completion_tokens: 0 }, "max_completion_tokens"],
  ["chat", { messages: [] }, "messages"],
  ["chat", { messages: [{ role: "wizard", content: "x" }] }, "messages[0].role"],
  ["chat", { reasoning_effort: "max" }, "reasoning_effort"],
  ["messages", { temperature: 1.5 }, "temperature"],
  ["messages", { max_tokens: 0 }, "max_tokens"],
  ["messages", { messages: [{ role: "system", content: "x" }] }, "messages[0].role"],
];

const WRONG_TYPES: Case[] = [
  ["responses", { temperature: "0.5" }, "temperature"],
  ["responses", { model: 42 }, "model"],
  ["responses", { input: 42 }, "input"],
  ["responses", { include: "message.output_text.logprobs" }, "include"],
  ["chat", { messages: "hello" }, "messages"],
  ["chat", { stream: "yes" }, "stream"],
  ["chat", { max_completion_tokens: "10" }, "max_completion_tokens"],
  ["messages", { max_tokens: "10" }, "max_tokens"],
  ["messages", { messages: [{ role: "user", content: 5 }] }, "messages[0].content"],
  ["responses", { temprature: 0 }, "temprature", "Unrecognized"],
  ["chat", { best_of: 2 }, "best_of", "Unrecognized"],
  ["messages", { container: "c" }, "container", "Unrecognized"],
];

/** The generated text of a greedy-decoding-sized request on `surface`. */
async function textOf(surface: Surface, fields: Record<string, unknown>): Promise<string> {
  const tokens = { responses: { max_output_tokens: 12 }, chat: { max_completion_tokens: 12 }, messages: { max_tokens: 12 } }[surface];
  const res = await post(server.url + path[surface], { ...base[surface], ...tokens, ...fields });
  expect(res.status).toBe(200);
  const j = res.json;
  return surface === "responses" ? j.output_text : surface === "chat" ? j.choices[0].message.content : j.content[0].text;
}

describe("every value the schemas accept reaches the engine", () => {
  for (const surface of ["responses", "chat", "messages"] as const) {
    test(`${surface}: top_p 0 keeps only the most likely token (the greedy text, even at temperature 1)`, async () => {
      const greedy = await textOf(surface, { temperature: 0 });
      expect(greedy.length).toBeGreaterThan(0);
      expect(await textOf(surface, { temperature: 1, top_p: 0 })).toBe(greedy);
    });
  }
  test("the edges of every range: temperature 0 and its maximum, top_p 1", async () => {
    for (const [surface, fields] of [["responses", { temperature: 2, top_p: 1 }], ["chat", { temperature: 2, top_p: 1 }], ["messages", { temperature: 1, top_p: 1 }]] as const) {
      const res = await post(server.url + path[surface], { ...base[surface], ...fields });
      expect(res.status).toBe(200);
    }
  });
});

describe("out-of-range values and wrong types", () => {
  for (const [surface, fields, param, mention] of [...OUT_OF_RANGE, ...WRONG_TYPES]) {
    test(`${surface} ${JSON.stringify(fields).slice(0, 70)} -> 400 param ${param.slice(0, 30)}`, () => expectRejected(surface, fields, param, mention));
  }

  test("missing required fields name them", async () => {
    for (const [surface, field] of [["responses", "input"], ["responses", "model"], ["chat", "messages"], ["messages", "max_tokens"]] as const) {
      const body: Record<string, unknown> = { ...base[surface] };
      delete body[field];
      const res = await post(server.url + path[surface], body);
      expect(res.status).toBe(400);
      expect(envelope(res.json).param).toBe(field);
      expect(res.json.error.message).toContain("Missing required parameter");
    }
  });
});

describe("malformed bodies, unknown things, limits", () => {
  const MALFORMED = ["{bad json", "{\"model\": ", "[]", "null", "42", "\"text\"", "", "\u0000\u0001"];
  for (const body of MALFORMED) {
    test(`malformed body ${JSON.stringify(body)} -> 400 on every surface`, async () => {
      for (const p of Object.values(path)) {
        const res = await post(server.url + p, body);
        expect(res.status).toBe(400);
        expect(envelope(res.json).type).toBe("invalid_request_error");
      }
    });
  }

  test("odd shapes are 4xx, never 5xx", async () => {
    const odd: [Surface, Record<string, unknown>][] = [
      ["responses", { model: { $ne: 1 } }], ["responses", { input: [null] }], ["responses", { input: [{ type: "function_call" }] }],
      ["responses", { tools: [{}] }], ["responses", { include: [1] }], ["responses", { text: { format: {} } }],
      ["responses", { metadata: [] }], ["responses", { input: [{ role: "user", content: [null] }] }],
      ["chat", { messages: [null] }], ["chat", { messages: [{}] }], ["chat", { messages: [{ role: "user", content: [{}] }] }],
      ["chat", { stream_options: "yes" }], ["chat", { tools: [{ type: "function" }] }], ["chat", { metadata: { a: null } }],
      ["messages", { messages: [{ role: "user" }] }], ["messages", { metadata: { user_id: 5 } }], ["messages", { messages: [{ role: "user", content: [{ type: "text" }] }] }],
    ];
    for (const [surface, fields] of odd) {
      const res = await post(server.url + path[surface], { ...base[surface], ...fields });
      expect(res.status, `${surface} ${JSON.stringify(fields)}`).toBeGreaterThanOrEqual(400);
      expect(res.status, `${surface} ${JSON.stringify(fields)}`).toBeLessThan(500);
      envelope(res.json);
    }
    const huge = await post(server.url + path.responses, `{"model":"${MODEL_ID}","input":"x","temperature":1e400}`);
    expect(huge.status).toBe(400);
    expect(envelope(huge.json).param).toBe("temperature");
    const deep = "[".repeat(5000) + "]".repeat(5000);
    const res = await post(server.url + path.chat, `{"model":"${MODEL_ID}","messages":${deep}}`);
    expect(res.status).toBe(400);
  });

  test("unknown model -> 404 not_found_error naming it, on every surface", async () => {
    for (const surface of Object.keys(base) as Surface[]) {
      const res = await post(server.url + path[surface], { ...base[surface], model: "no-such-model" });
      expect(res.status).toBe(404);
      const err = envelope(res.json);
      expect(err.type).toBe("not_found_error");
      expect(err.message).toContain("no-such-model");
      expect(err.param).toBe("model");
    }
    const res = await fetch(`${server.url}/v1/models/no-such-model`);
    expect(res.status).toBe(404);
    expect(envelope(await res.json()).message).toContain("no-such-model");
  });

  test("unknown routes and unimplemented ones -> 404 envelope", async () => {
    for (const [method, p] of [["GET", "/v1/nope"], ["POST", "/v1/messages/count_tokens"], ["POST", "/v1/messages/batches"], ["GET", "/v1/chat/completions/chatcmpl-x"], ["DELETE", "/v1/chat/completions/chatcmpl-x"], ["GET", "/"]]) {
      const res = await fetch(server.url + p, { method, headers: { "content-type": "application/json" }, body: method === "POST" ? "{}" : undefined });
      expect(res.status).toBe(404);
      expect(envelope(await res.json()).type).toBe("not_found_error");
    }
  });

  test("unknown response id -> 404", async () => {
    const res = await fetch(`${server.url}/v1/responses/resp_doesnotexist`);
    expect(res.status).toBe(404);
    expect(envelope(await res.json()).type).toBe("not_found_error");
  });

  test("body over the limit -> 413 request_too_large", async () => {
    const res = await post(server.url + path.responses, { ...base.responses, input: "x".repeat(BODY_LIMIT + 10) });
    expect(res.status).toBe(413);
    expect(envelope(res.json).type).toBe("request_too_large");
  });

  test("a prompt longer than the context -> 400 naming the sizes", async () => {
    const res = await post(server.url + path.responses, { ...base.responses, input: "Once upon a time ".repeat(100) });
    expect(res.status).toBe(400);
    expect(envelope(res.json).message).toContain("context");
  });

  test("the server still answers after all of that", async () => {
    const res = await post(server.url + path.responses, base.responses);
    expect(res.status).toBe(200);
    expect(res.json.status).toBe("incomplete");
  });
});
