// The engine worker through its host client: load, stream tokens, cancel, errors, stats, unload.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { EngineClient } from "../src/engine/client.ts";
import { openModel } from "../src/engine/model/open.ts";
import type { GeneratedToken } from "../src/engine/types.ts";

setDefaultTimeout(120_000);

const DIR = new URL("../../shared/models/stories15M/", import.meta.url).pathname;
const ref = JSON.parse(readFileSync(`${DIR}llama.cpp-greedy-q8_0.json`, "utf8")).cases[0];
let engine: EngineClient;

beforeAll(async () => {
  engine = await EngineClient.start();
});
afterAll(async () => {
  await engine?.close();
});

test("load reports the model's shape, and its upload's progress in the file's tensor bytes", async () => {
  const reports: [number, number][] = [];
  const m = await engine.load("s", `${DIR}stories15M-q8_0.gguf`, { maxContext: 128 }, (done, total) => reports.push([done, total]));
  expect(m).toEqual({ id: "s", arch: "llama", nVocab: 32000, nCtx: 128, maxRunning: 32, maxStepTokens: 128, kvPages: 256, pageSize: 16 });
  const file = openModel(`${DIR}stories15M-q8_0.gguf`);
  const tensorBytes = file.tensors.reduce((a, t) => a + t.nbytes, 0);
  file.close();
  expect(reports.length).toBeGreaterThan(5);
  expect(reports.length).toBeLessThanOrEqual(101); // a message per percent at most
  for (const [i, [done, total]] of reports.entries()) {
    expect(total).toBe(tensorBytes);
    if (i > 0) expect(done).toBeGreaterThan(reports[i - 1][0]);
  }
  expect(reports[reports.length - 1][0]).toBe(tensorBytes);
});

test("generate streams greedy tokens with logprobs, then finishes by length", async () => {
  const tokens: GeneratedToken[] = [];
  const r = await engine.generate("s", ref.prompt_ids, { maxTokens: 8, sampling: { temperature: 0, topP: 1 }, logprobs: true }, (t) => tokens.push(t));
  expect(tokens.map((t) => t.id)).toEqual(ref.greedy_ids.slice(0, 8));
  for (const t of tokens) expect(t.logprob!).toBeLessThanOrEqual(0);
  expect(r.finishReason).toBe("length");
  expect(r.timings.promptTokens).toBe(ref.prompt_ids.length);
  expect(r.timings.outputTokens).toBe(8);
});

test("a stop id ends generation without being emitted", async () => {
  const tokens: number[] = [];
  const r = await engine.generate("s", ref.prompt_ids, { maxTokens: 20, sampling: { temperature: 0, topP: 1 }, stopIds: [ref.greedy_ids[3]] }, (t) => tokens.push(t.id));
  expect(r.finishReason).toBe("stop");
  expect(tokens).toEqual(ref.greedy_ids.slice(0, 3));
});

test("seeded sampling is reproducible", async () => {
  const run = async () => {
    const ids: number[] = [];
    await engine.generate("s", ref.prompt_ids, { maxTokens: 12, sampling: { temperature: 1, topP: 0.9, seed: 42 } }, (t) => ids.push(t.id));
    return ids;
  };
  const a = await run();
  expect(a.length).toBe(12);
  expect(await run()).toEqual(a);
});

test("aborting the signal cancels between decode steps", async () => {
  const ctl = new AbortController();
  const tokens: number[] = [];
  const r = await engine.generate("s", ref.prompt_ids, { maxTokens: 100, sampling: { temperature: 0, topP: 1 } }, (t) => {
    tokens.push(t.id);
    if (tokens.length === 3) ctl.abort();
  }, ctl.signal);
  expect(r.finishReason).toBe("cancelled");
  expect(tokens.length).toBeGreaterThanOrEqual(3);
  expect(tokens.length).toBeLessThan(10);
});

test("bad requests get clear errors and the worker keeps serving", async () => {
  await expect(engine.generate("nope", [1], { maxTokens: 1, sampling: { temperature: 0, topP: 1 } }, () => {})).rejects.toThrow(/no model "nope"/);
  await expect(engine.generate("s", [1, 99999], { maxTokens: 1, sampling: { temperature: 0, topP: 1 } }, () => {})).rejects.toThrow(/outside the vocabulary/);
  await expect(engine.generate("s", new Array(200).fill(1), { maxTokens: 1, sampling: { temperature: 0, topP: 1 } }, () => {})).rejects.toThrow(/exceeds the context/);
  await expect(engine.load("x", "/nonexistent/model.gguf")).rejects.toThrow(/no such file/);
  await expect(engine.unload("x")).rejects.toThrow(/no model "x"/);
  const ids: number[] = [];
  await engine.generate("s", ref.prompt_ids, { maxTokens: 2, sampling: { temperature: 0, topP: 1 } }, (t) => ids.push(t.id));
  expect(ids).toEqual(ref.greedy_ids.slice(0, 2));
});

test("stats and unload", async () => {
  const s = await engine.stats();
  expect(s.models.map((m) => m.id)).toEqual(["s"]);
  expect(s.generations.tokens).toBeGreaterThan(20);
  expect(s.device?.features).toBeDefined();
  await engine.unload("s");
  expect((await engine.stats()).models).toEqual([]);
});
