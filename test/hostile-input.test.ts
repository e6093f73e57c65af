// Hostile bodies against the real server at its default limits: JSON nested far deeper than any
// request needs is a 400 naming where, before anything is stored or an Idempotency-Key reserved,
// and the server goes on serving everyone else.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { MODEL_ID, MODEL_PATH, envelope, post, startTestServer, type TestServer } from "./e2e-harness.ts";
import { MAX_BODY_DEPTH, overDepthAt, pathAt } from "../src/api/body.ts";
import { GrammarChecker } from "../src/engine/grammar/checker.ts";
import { GrammarCompileError } from "../src/engine/grammar/constraint.ts";

setDefaultTimeout(60_000);

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

const DEEP = 100_000;
const deepArray = (n: number) => "[".repeat(n) + "]".repeat(n);
const deepObject = (n: number) => '{"a":'.repeat(n) + "1" + "}".repeat(n);

/** [route, body text with the deep value in it, the param the error must name] */
const DEEP_BODIES: [string, string, string][] = [
  ["/v1/responses", `{"model":"${MODEL_ID}","input":${deepArray(DEEP)}}`, "input[0][0][0]"],
  ["/v1/responses", `{"model":"${MODEL_ID}","input":"x","metadata":${deepObject(DEEP)}}`, "metadata.a.a.a"],
  ["/v1/responses", `{"model":"${MODEL_ID}","input":"x","tools":[{"type":"function","name":"f","parameters":${deepObject(DEEP)}}]}`, "tools[0].parameters.a"],
  ["/v1/responses", `{"model":"${MODEL_ID}","input":"x","tool_choice":${deepObject(DEEP)}}`, "tool_choice.a.a.a"],
  ["/v1/chat/completions", `{"model":"${MODEL_ID}","messages":${deepArray(DEEP)}}`, "messages[0][0][0]"],
  ["/v1/chat/completions", `{"model":"${MODEL_ID}","messages":[{"role":"user","content":${deepArray(DEEP)}}]}`, "messages[0].content[0]"],
  ["/v1/messages", `{"model":"${MODEL_ID}","max_tokens":4,"messages":[{"role":"user","content":"x"}],"metadata":${deepObject(DEEP)}}`, "metadata.a.a.a"],
  ["/v1/batches", `{"endpoint":"/v1/responses","requests":[{"custom_id":"a","params":{"model":"${MODEL_ID}","input":${deepArray(DEEP)}}}]}`, "requests[0].params.input"],
];

describe("deeply nested JSON", () => {
  for (const [route, body, param] of DEEP_BODIES) {
    test(`${route} ${param}: 400 naming it`, async () => {
      const res = await post(server.url + route, body);
      expect(res.status).toBe(400);
      const err = envelope(res.json);
      expect(err.type).toBe("invalid_request_error");
      expect(err.code).toBe("nesting_too_deep");
      expect(err.param).toBe(param);
    });
  }

  test("with an Idempotency-Key: refused, and the key is not reserved by it", async () => {
    const key = "deep-then-valid";
    const deep = await post(`${server.url}/v1/responses`, DEEP_BODIES[0][1], { "Idempotency-Key": key });
    expect(deep.status).toBe(400);
    const valid = await post(`${server.url}/v1/responses`, { model: MODEL_ID, input: "Once upon a time", max_output_tokens: 2 }, { "Idempotency-Key": key });
    expect(valid.status).toBe(200);
    expect(valid.json.object).toBe("response");
    const again = await post(`${server.url}/v1/responses`, { model: MODEL_ID, input: "Once upon a time", max_output_tokens: 2 }, { "Idempotency-Key": key });
    expect(again.json.id).toBe(valid.json.id);
  });

  test("a refused batch stores nothing", async () => {
    const res = await post(server.url + "/v1/batches", DEEP_BODIES[DEEP_BODIES.length - 1][1]);
    expect(res.status).toBe(400);
    const list = await fetch(`${server.url}/v1/batches`).then((r) => r.json());
    expect(list).toEqual([]);
  });

  test("nesting up to the limit is not refused for its depth", async () => {
    // The schema refuses this body, but for what it is, not for how deep it is.
    const res = await post(`${server.url}/v1/responses`, `{"model":"${MODEL_ID}","input":${deepArray(MAX_BODY_DEPTH - 1)}}`);
    expect(res.status).toBe(400);
    expect(envelope(res.json).code).not.toBe("nesting_too_deep");
  });

  test("the server still answers", async () => {
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    const res = await post(`${server.url}/v1/responses`, { model: MODEL_ID, input: "Once upon a time", max_output_tokens: 2 });
    expect(res.status).toBe(200);
  });
});

describe("a schema that allows no token at all", () => {
  test("ends its own request, and the engine goes on serving everyone", async () => {
    const res = await post(`${server.url}/v1/chat/completions`, { model: MODEL_ID, messages: [{ role: "user", content: "x" }], max_completion_tokens: 4, response_format: { type: "json_schema", json_schema: { name: "x", schema: { $ref: "#" } } } });
    expect(res.status).toBe(200);
    expect(res.json.choices[0].message.content).toBe("");
    for (let i = 0; i < 2; i++) {
      const next = await post(`${server.url}/v1/chat/completions`, { model: MODEL_ID, messages: [{ role: "user", content: "Once upon a time" }], max_completion_tokens: 2 });
      expect(next.status).toBe(200);
      expect(next.json.usage.completion_tokens).toBe(2);
    }
  });
});

describe("a 10 MB prompt", () => {
  // The bound is the body's own JSON parse (10 MB on the HTTP thread: 150-250 ms on this 2-core
  // machine, which tipped a 200 ms bound in CI); tokenizing it there took ~22 s.
  test("is refused from its length without tokenizing it, and /health answers in < 500 ms meanwhile", async () => {
    const story = "Once upon a time, there was a little girl named Lily. She liked to play in the park. ";
    const input = story.repeat(Math.ceil(10_000_000 / story.length));
    const healthMs: number[] = [];
    let done = false;
    const big = post(`${server.url}/v1/responses`, { model: MODEL_ID, input, max_output_tokens: 1 }).finally(() => { done = true; });
    while (!done) {
      const t0 = performance.now();
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      healthMs.push(performance.now() - t0);
      await Bun.sleep(5);
    }
    const res = await big;
    expect(res.status).toBe(400);
    const err = envelope(res.json);
    expect(err.code).toBe("context_length_exceeded");
    expect(err.message).toContain("at least");
    expect(healthMs.length).toBeGreaterThan(0);
    expect(Math.max(...healthMs)).toBeLessThan(500);
  });
});

describe("the depth scan", () => {
  test("brackets inside strings and escaped quotes do not count", () => {
    const text = `{"a":"[[[[\\"[[[[","b":[1,[2]]}`;
    expect(overDepthAt(text, 3)).toBe(-1);
    expect(overDepthAt(text, 2)).toBe(text.indexOf("[2"));
  });
  test("the path names keys and indices up to the offending container", () => {
    const text = `{"x":1,"in\\"put":[0,{"k":[[9]]}]}`;
    const at = overDepthAt(text, 4);
    expect(pathAt(text, at)).toBe('in"put[1].k[0]');
    expect(pathAt(text, at, 2)).toBe('in"put[1]');
  });
});

describe("the schema checker (xgrammar in a worker)", () => {
  const nested = (depth: number): unknown => {
    let v: unknown = { type: "string" };
    for (let i = 0; i < depth; i++) v = { type: "object", properties: { a: v }, required: ["a"] };
    return v;
  };
  const wide = { type: "object", properties: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`p${i}`, { type: "string" }])) };
  const small = { type: "object", properties: { a: { type: "integer" } }, required: ["a"] };

  test("a check past its time limit is refused, and the next check runs on a fresh worker", async () => {
    const checker = new GrammarChecker(1);
    try {
      const err = await checker.check({ type: "json_schema", schema: wide }).catch((e) => e);
      expect(err).toBeInstanceOf(GrammarCompileError);
      expect(err.message).toContain("did not compile within 1 ms");
    } finally {
      checker.close();
    }
    const patient = new GrammarChecker();
    try {
      await patient.check({ type: "json_schema", schema: wide });
      await patient.check({ type: "json_schema", schema: small });
    } finally {
      patient.close();
    }
  });

  // Quick to check alone, slow against a vocabulary: xgrammar's masks for every state of long
  // repetitions (each pattern ~1.8 s on stories15M's 32k tokens; the four ~5 s, against ~0.1 s
  // without a vocabulary).
  const slowWithVocab = {
    type: "object",
    properties: Object.fromEntries(["a-z", "b-y", "c-x", "d-w"].map((l, i) => [`p${i}`, { type: "string", pattern: `^([${l}]{3,9}[0-9]{2,5}-){4,200}[A-Z]{2,30}$` }])),
    required: ["p0", "p1", "p2", "p3"],
  };

  test("the time limit covers the compile against the model's vocabulary, where the engine would stall", async () => {
    const vocab = { ref: MODEL_PATH, nVocab: 32000 };
    const checker = new GrammarChecker(1000);
    try {
      const t0 = performance.now();
      await checker.check({ type: "json_schema", schema: slowWithVocab }); // alone: accepted
      expect(performance.now() - t0).toBeLessThan(1000);
      const err = await checker.check({ type: "json_schema", schema: slowWithVocab }, vocab).catch((e) => e);
      expect(err).toBeInstanceOf(GrammarCompileError);
      expect(err.message).toContain("did not compile within 1000 ms");
      // the replacement worker prepares the vocabulary again and compiles what is fine
      await checker.check({ type: "json_schema", schema: small }, vocab);
      const bad = await checker.check({ type: "json_schema", schema: { $ref: "#/nowhere" } }, vocab).catch((e) => e);
      expect(bad).toBeInstanceOf(GrammarCompileError);
    } finally {
      checker.close();
    }
  });

  test("such a schema is a 400 naming it on /v1/responses, and the server serves the next request", async () => {
    const res = await post(`${server.url}/v1/responses`, { model: MODEL_ID, input: "x", max_output_tokens: 2, text: { format: { type: "json_schema", name: "x", schema: slowWithVocab } } });
    expect(res.status).toBe(400);
    const err = envelope(res.json);
    expect(err).toMatchObject({ param: "text.format.schema", code: "invalid_schema" });
    expect(err.message).toContain("did not compile within");
    const ok = await post(`${server.url}/v1/responses`, { model: MODEL_ID, input: "x", max_output_tokens: 4, text: { format: { type: "json_schema", name: "x", schema: small } } });
    expect(ok.status).toBe(200);
  });

  test("a schema that traps inside xgrammar (nested 120 deep) is refused and does not poison the next", async () => {
    const checker = new GrammarChecker();
    try {
      for (let i = 0; i < 3; i++) {
        const err = await checker.check({ type: "json_schema", schema: nested(120) }).catch((e) => e);
        expect(err).toBeInstanceOf(GrammarCompileError);
        await checker.check({ type: "json_schema", schema: small });
      }
    } finally {
      checker.close();
    }
  });
});
