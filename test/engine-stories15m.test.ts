// stories15M (real weights) through our engine, greedy, against llama.cpp's recorded outputs
// (../shared/models/stories15M/llama.cpp-greedy-*.json: llama.cpp's CPU backend, flash attention
// on, as it runs by default). The engine reproduces that backend's arithmetic (Q8_0 activation
// quantization and its dot orders, f16 flash-attention accumulator, its rmsnorm/rope/silu
// roundings), so all three files match for all 64 tokens of all three prompts. The rule
// stays the bar: a flip is acceptable only between tokens whose logits differ by < 1e-3, which
// the test measures (evalLogits over llama.cpp's own prefix) should one ever occur.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { acquireDevice, loadModel } from "../src/engine/index.ts";
import { openModel } from "../src/engine/model/open.ts";
import type { LoadedModel } from "../src/engine/types.ts";
import type { ModelRunner } from "../src/engine/runner.ts";

setDefaultTimeout(300_000);

const DIR = new URL("../../shared/models/stories15M/", import.meta.url).pathname;
/** A flip is acceptable only between near-tied tokens (the criterion). */
const NEAR_TIE = 1e-3;

interface Case { prompt: string; prompt_ids: number[]; greedy_ids: number[] }
const cases = (type: string): Case[] => JSON.parse(require("node:fs").readFileSync(`${DIR}llama.cpp-greedy-${type}.json`, "utf8")).cases;

async function greedy(m: LoadedModel, prompt: number[], n: number): Promise<number[]> {
  const ids: number[] = [];
  for await (const t of m.generate(prompt, { maxTokens: n, sampling: { temperature: 0, topP: 1 } })) ids.push(t.id);
  return ids;
}

/** Logit gap between our top token and llama.cpp's at the first divergence (replaying llama.cpp's ids). */
async function gapAt(m: LoadedModel, c: Case, at: number): Promise<{ ours: number; theirs: number; gap: number }> {
  m.reset();
  const logits = await m.evalLogits([...c.prompt_ids, ...c.greedy_ids.slice(0, at)]);
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  const theirs = c.greedy_ids[at];
  return { ours: best, theirs, gap: logits[best] - logits[theirs] };
}

let device: GPUDevice;
beforeAll(async () => { device = await acquireDevice(); });
// (a device left alive keeps its compiled pipelines mapped: the whole suite is one process)
afterAll(() => device?.destroy());

for (const type of ["f32", "q8_0", "q4_0"]) {
  describe(`stories15M-${type}`, () => {
    let model: LoadedModel;
    beforeAll(async () => { model = await loadModel(device, openModel(`${DIR}stories15M-${type}.gguf`)); });
    afterAll(() => model?.dispose());

    for (const [i, c] of cases(type).entries()) {
      test(`greedy 64 tokens after "${c.prompt}" equal llama.cpp's`, async () => {
        const ids = await greedy(model, c.prompt_ids, c.greedy_ids.length);
        expect(ids.length).toBe(c.greedy_ids.length);
        const at = ids.findIndex((id, k) => id !== c.greedy_ids[k]);
        if (at < 0) return;
        const g = await gapAt(model, c, at);
        const msg = `case ${i} diverges at token ${at}: ours ${g.ours}, llama.cpp ${g.theirs}, logit gap ${g.gap.toExponential(3)}`;
        console.log(`stories15M-${type}: ${msg}`);
        // our top token at the divergence is the one we generated (the replay is consistent)
        expect(g.ours).toBe(ids[at]);
        if (!(g.gap < NEAR_TIE)) throw new Error(`flip is not a near-tie: ${msg}`);
      });
    }
  });
}

// The batcher submits each unconstrained decode step before the previous token is read back and
// drops it when that token ends the generation: every way of ending must give the tokens of a
// plain step-by-step loop, give every KV page back, and leave the model ready for the next call.
describe("decode with a step in flight (stories15M-q8_0)", () => {
  const c = cases("q8_0")[0];
  const P = c.prompt_ids.length;
  const GREEDY = { temperature: 0, topP: 1 };
  let model: LoadedModel & ModelRunner;
  let want: number[];
  beforeAll(async () => {
    model = await loadModel(device, openModel(`${DIR}stories15M-q8_0.gguf`), { maxContext: P + 24 });
    want = await greedy(model, c.prompt_ids, 20);
  });
  afterAll(() => model?.dispose());

  async function run(opts: { maxTokens: number; stopIds?: number[]; signal?: AbortSignal }, onToken?: (n: number) => void) {
    const gen = model.generate(c.prompt_ids, { sampling: GREEDY, ...opts });
    const ids: number[] = [];
    for (let r = await gen.next(); ; r = await gen.next()) {
      if (r.done) return { ids, finishReason: r.value.finishReason, held: model.stats().kv.used };
      ids.push(r.value.id);
      onToken?.(ids.length);
    }
  }

  test("a stop token ends it; the cache holds the prompt and the tokens before it", async () => {
    const at = want.findIndex((id, i) => i >= 5 && want.indexOf(id) === i);
    const r = await run({ maxTokens: 20, stopIds: [want[at]] });
    expect(r).toEqual({ ids: want.slice(0, at), finishReason: "stop", held: 0 });
    expect(await greedy(model, c.prompt_ids, 20)).toEqual(want);
  });

  test("max tokens, one token, and the end of the context", async () => {
    expect(await run({ maxTokens: 7 })).toEqual({ ids: want.slice(0, 7), finishReason: "length", held: 0 });
    expect(await run({ maxTokens: 1 })).toEqual({ ids: want.slice(0, 1), finishReason: "length", held: 0 });
    // context P + 24: the last step feeds position P + 23, so 25 tokens come out
    const r = await run({ maxTokens: 100 });
    expect(r.ids.length).toBe(25);
    expect(r.ids.slice(0, 20)).toEqual(want);
    expect(r.held).toBe(0);
  });

  test("cancelling, or dropping the generator, leaves the model ready", async () => {
    const ctl = new AbortController();
    const r = await run({ maxTokens: 20, signal: ctl.signal }, (n) => { if (n === 3) ctl.abort(); });
    expect(r).toEqual({ ids: want.slice(0, 3), finishReason: "cancelled", held: 0 });
    const seen: number[] = [];
    for await (const t of model.generate(c.prompt_ids, { maxTokens: 20, sampling: GREEDY })) {
      seen.push(t.id);
      if (seen.length === 4) break;
    }
    expect(seen).toEqual(want.slice(0, 4));
    expect(model.stats()).toMatchObject({ running: 0, waiting: 0, kv: { used: 0 } });
    expect(await greedy(model, c.prompt_ids, 20)).toEqual(want);
  });
});

// The output head by default (forward.ts FAST_HEAD: the device's own fma, one accumulator per
// row) against the head rounded as llama.cpp rounds it (exactHead, bit-equal to llama.cpp in the
// live test below): its logits may move by rounding only, never enough to change the greedy pick.
describe("the fast output head", () => {
  for (const type of ["q8_0", "q4_0"]) {
    test(`stories15M-${type}: logits within 1e-4 of the exact head's, same argmax, along a greedy run`, async () => {
      const c = cases(type)[0];
      const fast = await loadModel(device, openModel(`${DIR}stories15M-${type}.gguf`));
      const exact = await loadModel(device, openModel(`${DIR}stories15M-${type}.gguf`), { exactHead: true });
      try {
        let worst = 0;
        for (const s of [0, 8, 24, 48, 63]) {
          const ids = [...c.prompt_ids, ...c.greedy_ids.slice(0, s)];
          fast.reset();
          exact.reset();
          const [a, b] = [await fast.evalLogits(ids), await exact.evalLogits(ids)];
          let argA = 0, argB = 0;
          for (let i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i] - b[i]));
            if (a[i] > a[argA]) argA = i;
            if (b[i] > b[argB]) argB = i;
          }
          expect(argA).toBe(argB);
        }
        console.log(`stories15M-${type}: fast head max |logit - exact head's| ${worst.toExponential(2)}`);
        expect(worst).toBeGreaterThan(0);  // it is a different rounding (else this test tests nothing)
        expect(worst).toBeLessThan(1e-4);
      } finally {
        fast.dispose();
        exact.dispose();
      }
    });
  }
});

// Opt-in (needs llama.cpp through node-llama-cpp, ~1 min per file): our logits along llama.cpp's
// greedy sequences against its own, for its top 10 tokens at every step. With the output head
// rounded exactly too, the quantized files' logits are the same floats, bit for bit.
describe.skipIf(process.env.VALAR_LIVE_LLAMA !== "1")("live llama.cpp logits (VALAR_LIVE_LLAMA=1)", () => {
  for (const type of ["q8_0", "q4_0"]) {
    test(`stories15M-${type}: 64 steps x 3 prompts, top-10 logits bit-equal`, async () => {
      const { openReference, greedyWithLogits } = await import("../scripts/llama-cpp-reference.ts");
      const path = `${DIR}stories15M-${type}.gguf`;
      const ref = await openReference(path);
      const model = await loadModel(device, openModel(path), { exactHead: true });
      try {
        for (const c of cases(type)) {
          const { steps } = await greedyWithLogits(ref.sequence, c.prompt_ids, c.greedy_ids.length, 10, c.greedy_ids);
          for (let s = 0; s < steps.length; s++) {
            model.reset();
            const logits = await model.evalLogits([...c.prompt_ids, ...c.greedy_ids.slice(0, s)]);
            const diffs = steps[s].topIds.filter((id, k) => logits[id] !== steps[s].topLogits[k]);
            expect({ prompt: c.prompt, step: s, diffs }).toEqual({ prompt: c.prompt, step: s, diffs: [] });
          }
        }
      } finally {
        model.dispose();
        await ref.close();
      }
    });
  }

  // Which of llama.cpp's two attention paths the engine reproduces: its default flash attention
  // (above, bit for bit). Its classic path (f32 softmax, f16 V products) gives other floats at
  // every step, so agreeing with it is not the claim.
  test("stories15M-q8_0: llama.cpp's flash-off logits are not the ones reproduced", async () => {
    const { openReference, greedyWithLogits } = await import("../scripts/llama-cpp-reference.ts");
    const path = `${DIR}stories15M-q8_0.gguf`;
    const ref = await openReference(path, { flashAttention: false });
    const model = await loadModel(device, openModel(path), { exactHead: true });
    try {
      const c = cases("q8_0")[0];
      const { steps } = await greedyWithLogits(ref.sequence, c.prompt_ids, 16, 10, c.greedy_ids);
      let equal = 0, worst = 0;
      for (let s = 0; s < steps.length; s++) {
        model.reset();
        const logits = await model.evalLogits([...c.prompt_ids, ...c.greedy_ids.slice(0, s)]);
        steps[s].topIds.forEach((id, k) => {
          if (logits[id] === steps[s].topLogits[k]) equal++;
          worst = Math.max(worst, Math.abs(logits[id] - steps[s].topLogits[k]));
        });
      }
      console.log(`flash-off path: ${equal} of ${16 * 10} logits equal, max |diff| ${worst.toExponential(2)}`);
      expect(equal).toBeLessThan(16);
      expect(worst).toBeGreaterThan(1e-3);
    } finally {
      model.dispose();
      await ref.close();
    }
  });
});

// A matrix larger than the device's storage binding is split by rows into parts (weights.ts),
// each part starting on a whole group of interleaved rows. Here the binding limit is lowered to
// 1 MB, so the tied 32000 x 288 table (9.9 MB) runs as 10 parts through the embedding lookup and
// the output head, and every other matrix of the Q8_0 and Q4_0 files fits one part or two.
describe("matrices split across bindings", () => {
  const LIMIT = 1 << 20;
  /** The device as the engine sees it, with a smaller storage binding limit. */
  const limited = (d: GPUDevice): GPUDevice => {
    const limits = Object.create(d.limits, { maxStorageBufferBindingSize: { value: LIMIT } });
    return new Proxy(d, {
      // the device's own methods, called on the device itself
      get: (t, k) => (k === "limits" ? limits : typeof Reflect.get(t, k) === "function" ? Reflect.get(t, k).bind(t) : Reflect.get(t, k)),
    });
  };
  for (const type of ["q8_0", "q4_0"]) {
    test(`stories15M-${type} with a 1 MB binding limit: greedy ids still equal llama.cpp's`, async () => {
      const c = cases(type)[0];
      const model = await loadModel(limited(device), openModel(`${DIR}stories15M-${type}.gguf`));
      try {
        expect(await greedy(model, c.prompt_ids, c.greedy_ids.length)).toEqual(c.greedy_ids);
      } finally {
        model.dispose();
      }
    });
  }
});
