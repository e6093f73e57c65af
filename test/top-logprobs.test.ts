// Top logprobs computed on the GPU (shaders/top_logprobs.wgsl): at every step the engine's k
// most likely tokens and their log-probabilities equal those found on the host from the same
// step's logits (evalLogits over the same prefix, log-softmax in f64), greedy and sampled, with
// a grammar mask, and beside rows that ask for none; and /v1/responses returns them as
// `top_logprobs` with the official SDK.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import OpenAI from "openai";
import { acquireDevice, loadModel } from "../src/engine/index.ts";
import { openModel } from "../src/engine/model/open.ts";
import type { GeneratedToken, LoadedModel } from "../src/engine/types.ts";
import type { ModelRunner } from "../src/engine/runner.ts";
import { MODEL_ID, MODEL_PATH, greedyCases, startTestServer, type TestServer } from "./e2e-harness.ts";

setDefaultTimeout(300_000);

let model: LoadedModel & ModelRunner;
let device: GPUDevice;
beforeAll(async () => { device = await acquireDevice(); model = await loadModel(device, openModel(MODEL_PATH), { maxContext: 256 }); });
afterAll(() => { model?.dispose(); device?.destroy(); });

/** The k most likely ids after `prefix` (logit descending, id ascending) with log-softmax values. */
async function hostTop(prefix: number[], k: number): Promise<{ id: number; logprob: number }[]> {
  model.reset();
  const logits = await model.evalLogits(prefix);
  let mx = -Infinity;
  for (const v of logits) mx = Math.max(mx, v);
  let z = 0;
  for (const v of logits) z += Math.exp(v - mx);
  const lse = mx + Math.log(z);
  const ids = [...logits.keys()].sort((a, b) => logits[b] - logits[a] || a - b).slice(0, k);
  return ids.map((id) => ({ id, logprob: logits[id] - lse }));
}

async function run(prompt: number[], n: number, opts: { temperature: number; seed?: number; topLogprobs: number }): Promise<GeneratedToken[]> {
  const out: GeneratedToken[] = [];
  const gen = model.generate(prompt, { maxTokens: n, sampling: { temperature: opts.temperature, topP: 1, seed: opts.seed }, logprobs: true, topLogprobs: opts.topLogprobs });
  for await (const t of gen) out.push(t);
  return out;
}

async function expectHostTop(prompt: number[], tokens: GeneratedToken[], k: number) {
  for (let i = 0; i < tokens.length; i++) {
    const want = await hostTop([...prompt, ...tokens.slice(0, i).map((t) => t.id)], k);
    const got = tokens[i].top!;
    expect(got.map((t) => t.id)).toEqual(want.map((t) => t.id));
    got.forEach((t, j) => expect(Math.abs(t.logprob - want[j].logprob)).toBeLessThan(2e-4));
    // the sampled token's own logprob is on the same scale
    const mine = got.find((t) => t.id === tokens[i].id);
    if (mine) expect(Math.abs(mine.logprob - tokens[i].logprob!)).toBeLessThan(1e-5);
  }
}

describe("top logprobs on the GPU", () => {
  test("greedy: the top 5 of every step equal the host's, the first being the sampled token", async () => {
    const c = (await greedyCases())[0];
    const tokens = await run(c.prompt_ids, 12, { temperature: 0, topLogprobs: 5 });
    expect(tokens.map((t) => t.id)).toEqual(c.greedy_ids.slice(0, 12));
    for (const t of tokens) { expect(t.top).toHaveLength(5); expect(t.top![0].id).toBe(t.id); }
    await expectHostTop(c.prompt_ids, tokens, 5);
  });

  test("sampled at temperature 1, 20 alternatives, beside a sequence that asks for none", async () => {
    const c = (await greedyCases())[1];
    const plain = model.generate(c.prompt_ids, { maxTokens: 10, sampling: { temperature: 0, topP: 1 }, logprobs: true });
    const [tokens, others] = await Promise.all([
      run(c.prompt_ids, 10, { temperature: 1, seed: 7, topLogprobs: 20 }),
      (async () => { const o: GeneratedToken[] = []; for await (const t of plain) o.push(t); return o; })(),
    ]);
    for (const t of others) expect(t.top).toBeUndefined();
    for (const t of tokens) expect(t.top).toHaveLength(20);
    await expectHostTop(c.prompt_ids, tokens, 20);
  });

  test("without logprobs nothing is reported; out of range is refused", async () => {
    const c = (await greedyCases())[0];
    const gen = model.generate(c.prompt_ids, { maxTokens: 2, sampling: { temperature: 0, topP: 1 }, topLogprobs: 3 });
    for await (const t of gen) { expect(t.top).toBeUndefined(); expect(t.logprob).toBeUndefined(); }
    await expect(run(c.prompt_ids, 1, { temperature: 0, topLogprobs: 21 })).rejects.toThrow(/topLogprobs/);
  });
});

describe("top_logprobs on /v1/responses", () => {
  let server: TestServer;
  beforeAll(async () => { server = await startTestServer(); });
  afterAll(async () => { await server?.close(); });

  test("each output token carries its top alternatives, the host's ids and logprobs", async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" });
    const c = (await greedyCases())[2];
    const r = await client.responses.create({
      model: MODEL_ID, input: c.prompt, temperature: 0, max_output_tokens: 6,
      include: ["message.output_text.logprobs"], top_logprobs: 3,
    });
    expect(r.top_logprobs).toBe(3);
    const part = (r.output[0] as any).content[0];
    const lps = part.logprobs as { token: string; logprob: number; top_logprobs: { token: string; logprob: number; bytes: number[] }[] }[];
    expect(lps).toHaveLength(6);
    const { createTokenizer } = await import("../src/engine/tokenizer/index.ts");
    const file = openModel(MODEL_PATH);
    const tok = createTokenizer(file);
    file.close();
    const piece = (id: number) => { const d = tok.decoder(); return d.push(id) + d.flush(); };
    for (let i = 0; i < lps.length; i++) {
      const want = await hostTop([...c.prompt_ids, ...c.greedy_ids.slice(0, i)], 3);
      expect(lps[i].top_logprobs.map((a) => a.token)).toEqual(want.map((w) => piece(w.id)));
      lps[i].top_logprobs.forEach((a, j) => expect(Math.abs(a.logprob - want[j].logprob)).toBeLessThan(2e-4));
      expect(lps[i].top_logprobs[0]).toMatchObject({ token: lps[i].token, logprob: lps[i].logprob });
      expect(lps[i].top_logprobs[0].bytes).toEqual([...new TextEncoder().encode(lps[i].token)]);
    }
  });

  test("under a json_schema the alternatives are the grammar's: the first is always the greedy pick", async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" });
    const r = await client.responses.create({
      model: MODEL_ID, input: "Once upon a time", temperature: 0, max_output_tokens: 12,
      include: ["message.output_text.logprobs"], top_logprobs: 4,
      text: { format: { type: "json_schema", name: "x", strict: true, schema: { type: "object", properties: { a: { type: "boolean" } }, required: ["a"], additionalProperties: false } } },
    });
    const lps = (r.output[0] as any).content[0].logprobs as { token: string; logprob: number; top_logprobs: { token: string; logprob: number }[] }[];
    expect(lps.length).toBeGreaterThan(2);
    for (const lp of lps) {
      expect(lp.top_logprobs.length).toBeGreaterThan(0);
      expect(lp.top_logprobs[0]).toMatchObject({ token: lp.token, logprob: lp.logprob });
      for (const a of lp.top_logprobs) expect(Number.isFinite(a.logprob)).toBe(true);
    }
    // unconstrained, the model continues "Once upon a time" with ","; the mask allows only what
    // opens the object, and so do the alternatives
    expect(lps[0].token).toContain("{");
    for (const a of lps[0].top_logprobs) expect(a.token).toMatch(/^\s*(\{|$)/);
    JSON.parse(r.output_text);
  });

  test("top_logprobs out of range is a 400 naming it", async () => {
    const res = await fetch(`${server.url}/v1/responses`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: MODEL_ID, input: "x", top_logprobs: 21 }) });
    expect(res.status).toBe(400);
    expect((await res.json()).error.param).toBe("top_logprobs");
  });
});
