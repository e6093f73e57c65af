// Continuous batching in the engine (src/engine/batcher.ts), on real weights and on the random
// qwen2 / qwen3 models of the parity suite: many sequences advanced together in each step must
// give exactly the ids each gives alone (greedy; a json_schema and a tool-call sequence in the
// mix, sequences joining and leaving mid-stream), the prefix cache must start a sequence on the
// pages an earlier one computed without changing its tokens, and a KV pool too small for
// everyone must preempt and later finish sequences with the same tokens.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acquireDevice, loadModel, type LoadOptions } from "../src/engine/index.ts";
import { openModel } from "../src/engine/model/open.ts";
import type { ModelFile } from "../src/engine/model/types.ts";
import type { ModelRunner, SequenceOptions } from "../src/engine/runner.ts";
import { createTokenizer } from "../src/engine/tokenizer/index.ts";
import { createGrammarFactory, type GrammarFactory } from "../src/engine/grammar/index.ts";
import { TOOL_CALL_FORMATS, type OutputConstraint } from "../src/engine/grammar/constraint.ts";
import { mulberry32 } from "../src/engine/quant.ts";
import { buildRandomGGUF, findRandomModel } from "./support/random-gguf.ts";

setDefaultTimeout(300_000);

const STORIES = new URL("../../shared/models/stories15M/", import.meta.url).pathname;
const GREEDY = { temperature: 0, topP: 1 };
const tmp = mkdtempSync(join(tmpdir(), "valar-batching-"));
let device: GPUDevice;

beforeAll(async () => {
  device = await acquireDevice();
});
// (a device left alive keeps its compiled pipelines mapped: the whole suite is one process)
afterAll(() => device?.destroy());
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** One sequence to run: its prompt, its budget, and optionally a grammar. */
interface Job { prompt: number[]; maxTokens: number; constraint?: OutputConstraint }

async function run(model: ModelRunner, job: Job, grammar?: GrammarFactory, opts: Partial<SequenceOptions> = {}, onToken?: (n: number) => void) {
  const matcher = job.constraint ? (await grammar!.compile(job.constraint)).matcher() : undefined;
  const ids: number[] = [];
  try {
    const gen = model.generate(job.prompt, { maxTokens: job.maxTokens, sampling: GREEDY, ...opts }, matcher);
    for (let r = await gen.next(); ; r = await gen.next()) {
      if (r.done) return { ids, ...r.value };
      ids.push(r.value.id);
      onToken?.(ids.length);
    }
  } finally {
    matcher?.dispose();
  }
}

/**
 * Runs `jobs` at once: the first half from the start, each of the others joining once the
 * sequence before it has produced a few tokens (so they join steps already running); their
 * budgets differ, so they also leave at different steps.
 */
async function concurrently(model: ModelRunner, jobs: Job[], grammar?: GrammarFactory) {
  const half = Math.ceil(jobs.length / 2);
  const started: Promise<Awaited<ReturnType<typeof run>>>[] = [];
  const joinAfter: (() => void)[] = [];
  for (let i = 0; i < jobs.length; i++) {
    if (i >= half) await new Promise<void>((resolve) => { joinAfter[i - 1] = resolve; });
    started.push(run(model, jobs[i], grammar, {}, (n) => { if (n === 3) joinAfter[i]?.(); }));
    // a sequence that produces fewer than 3 tokens must not hold the next one back
    started[i].then(() => joinAfter[i]?.());
  }
  return Promise.all(started);
}

/** `n` prompts of 3 to ~50 tokens (BOS first) and budgets of 6 to ~30 tokens, all different. */
function jobsFor(nVocab: number, n: number, seed: number, firstIds: number[] = []): Job[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => {
    const len = 3 + Math.floor(rand() * 48);
    const prompt = [1, ...Array.from({ length: len - 1 }, () => (firstIds.length ? firstIds[Math.floor(rand() * firstIds.length)] : 3 + Math.floor(rand() * (nVocab - 3))))];
    return { prompt, maxTokens: 6 + ((i * 7) % 25) };
  });
}

interface Subject { name: string; file: () => ModelFile; grammar: boolean }

const SUBJECTS: Subject[] = [
  { name: "stories15M-q8_0", file: () => openModel(`${STORIES}stories15M-q8_0.gguf`), grammar: true },
  ...["qwen2-f32", "qwen3-q4_k"].map((name): Subject => ({
    name,
    file: () => {
      const path = join(tmp, `${name}.gguf`);
      writeFileSync(path, buildRandomGGUF(findRandomModel(name)));
      return openModel(path);
    },
    grammar: false,
  })),
];

/** Story words of stories15M's vocabulary, so its prompts read as text (ids from llama.cpp's fixtures). */
const STORY_IDS = [...new Set(JSON.parse(readFileSync(`${STORIES}llama.cpp-greedy-q8_0.json`, "utf8")).cases.flatMap((c: { prompt_ids: number[]; greedy_ids: number[] }) => [...c.prompt_ids.slice(1), ...c.greedy_ids]))] as number[];

const PERSON = {
  type: "object",
  properties: { name: { type: "string", maxLength: 12 }, mood: { type: "string", enum: ["happy", "sad"] } },
  required: ["name", "mood"],
  additionalProperties: false,
};
const WEATHER_CALL: OutputConstraint = {
  type: "tool_calls", format: TOOL_CALL_FORMATS.hermes, parallel: false,
  tools: [{ name: "get_weather", parameters: { type: "object", properties: { city: { type: "string", maxLength: 10 } }, required: ["city"] } }],
};

for (const subject of SUBJECTS) {
  describe(`${subject.name}: a batch gives each sequence the ids it gets alone`, () => {
    let file: ModelFile;
    let model: ModelRunner;
    let grammar: GrammarFactory | undefined;
    let jobs: Job[];
    let alone: number[][];
    beforeAll(async () => {
      file = subject.file();
      model = await loadModel(device, file, { maxContext: 256, maxRunning: 16, maxStepTokens: 64, prefixCache: false });
      if (subject.grammar) grammar = await createGrammarFactory(createTokenizer(file), model.nVocab);
      jobs = jobsFor(model.nVocab, 16, 7, subject.name.startsWith("stories") ? STORY_IDS : []);
      if (grammar) {
        jobs[5] = { ...jobs[5], maxTokens: 40, constraint: { type: "json_schema", schema: PERSON, strict: true } };
        jobs[12] = { ...jobs[12], maxTokens: 40, constraint: WEATHER_CALL };
      }
      alone = [];
      for (const j of jobs) alone.push((await run(model, j, grammar)).ids);
    });
    afterAll(() => {
      model?.dispose();
      file?.close();
    });

    for (const n of [1, 4, 16]) {
      test(`${n} at once${n === 16 && subject.grammar ? " (one json_schema, one tool call)" : ""}, joining and leaving mid-stream`, async () => {
        const steps0 = model.stats().steps;
        const got = await concurrently(model, jobs.slice(0, n), grammar);
        got.forEach((r, i) => expect({ i, ids: r.ids }).toEqual({ i, ids: alone[i] }));
        // they did share steps: fewer steps than tokens
        const tokens = got.reduce((a, r) => a + r.ids.length, 0);
        if (n > 1) expect(model.stats().steps - steps0).toBeLessThan(tokens);
        expect(model.stats()).toMatchObject({ running: 0, waiting: 0, kv: { used: 0 } });
      });
    }

    if (subject.grammar) {
      test("the constrained ones are valid: JSON of the schema, a call of the tool", () => {
        const tok = createTokenizer(file);
        const person = JSON.parse(tok.decode(alone[5]));
        expect(Object.keys(person).sort()).toEqual(["mood", "name"]);
        expect(tok.decode(alone[12])).toMatch(/^<tool_call>\n\{"name": "get_weather", "arguments": \{/);
      });
    }
  });
}

describe("prefix cache and preemption (stories15M-q8_0)", () => {
  let file: ModelFile;
  beforeAll(() => { file = openModel(`${STORIES}stories15M-q8_0.gguf`); });
  afterAll(() => file?.close());
  const load = (opts: LoadOptions) => loadModel(device, file, { maxContext: 256, ...opts });

  test("a prompt that extends an earlier sequence starts on its pages: cached whole pages, the same ids", async () => {
    const cached = await load({});
    const fresh = await load({ prefixCache: false });
    try {
      const first: Job = { prompt: [1, ...STORY_IDS.slice(0, 40)], maxTokens: 30 };
      const a = await run(cached, first);
      expect(a.timings.cachedTokens).toBe(0);
      // the conversation resent with its answer and one more turn
      const next: Job = { prompt: [...first.prompt, ...a.ids, ...STORY_IDS.slice(40, 52)], maxTokens: 20 };
      const b = await run(cached, next);
      const c = await run(fresh, next);
      expect(b.ids).toEqual(c.ids);
      expect(c.timings.cachedTokens).toBe(0);
      // 41 prompt + 30 answered tokens computed before: 4 full pages of 16
      expect(b.timings.cachedTokens).toBe(64);
      expect(b.timings.cachedTokens % 16).toBe(0);
      expect(cached.stats().kv.hitTokens).toBe(64);
    } finally {
      cached.dispose();
      fresh.dispose();
    }
  });

  test("eviction under pressure: a pool of one context, many prompts, the same ids as without the cache", async () => {
    const small = await load({ kvCacheTokens: 256 });
    const fresh = await load({ prefixCache: false });
    try {
      const jobs = jobsFor(32000, 12, 11, STORY_IDS).map((j) => ({ ...j, prompt: [...j.prompt, ...j.prompt] }));
      for (const round of [0, 1]) {
        for (const j of jobs) expect((await run(small, j)).ids).toEqual((await run(fresh, j)).ids);
        if (round === 0) expect(small.stats().kv.evictions).toBeGreaterThan(0);
      }
    } finally {
      small.dispose();
      fresh.dispose();
    }
  });

  test("a KV pool too small for everyone: standard sequences are preempted, then finish with the same ids", async () => {
    // 384 positions (24 pages) for 8 sequences that need up to ~110 each
    const tight = await load({ kvCacheTokens: 384, maxRunning: 8, prefixCache: false });
    try {
      const jobs = jobsFor(32000, 8, 13, STORY_IDS).map((j) => ({ ...j, maxTokens: 60 }));
      const alone: number[][] = [];
      for (const j of jobs) alone.push((await run(tight, j)).ids);
      const got = await Promise.all(jobs.map((j, i) => run(tight, j, undefined, { priority: i === 0 ? "asap" : "standard" })));
      got.forEach((r, i) => {
        expect({ i, ids: r.ids }).toEqual({ i, ids: alone[i] });
        expect(r.finishReason).toBe("length");
      });
      expect(tight.stats().preemptions).toBeGreaterThan(0);
      expect(tight.stats()).toMatchObject({ running: 0, waiting: 0, kv: { used: 0 } });
    } finally {
      tight.dispose();
    }
  });

  test("an asap sequence takes a slot from a standard one when every slot is taken", async () => {
    const two = await load({ maxRunning: 2 });
    try {
      const [s1, s2, a] = jobsFor(32000, 3, 17, STORY_IDS).map((j) => ({ ...j, maxTokens: 40 }));
      const alone = await run(two, a);
      const order: string[] = [];
      const standardAlone = [await run(two, s1), await run(two, s2)];
      const standard = [s1, s2].map((j, i) => run(two, j, undefined, { priority: "standard" }).then((r) => (order.push(`s${i}`), r)));
      // both standard sequences are running before the asap one arrives
      await new Promise((r) => setTimeout(r, 50));
      while (two.stats().running < 2) await new Promise((r) => setTimeout(r, 5));
      const urgent = await run(two, a, undefined, { priority: "asap" });
      order.push("a");
      expect((await Promise.all(standard)).map((r) => r.ids)).toEqual(standardAlone.map((r) => r.ids));
      expect(urgent.ids).toEqual(alone.ids);
      // the newer standard sequence gave its slot up and finished after the asap one
      expect(order.indexOf("a")).toBeLessThan(order.indexOf("s1"));
      expect(two.stats().preemptions).toBeGreaterThan(0);
    } finally {
      two.dispose();
    }
  });

  test("a cancelled sequence gives its pages back at once", async () => {
    const m = await load({});
    try {
      const ctl = new AbortController();
      const r = await run(m, { prompt: [1, ...STORY_IDS.slice(0, 30)], maxTokens: 100 }, undefined, { signal: ctl.signal }, (n) => { if (n === 5) ctl.abort(); });
      expect(r.finishReason).toBe("cancelled");
      expect(m.stats()).toMatchObject({ running: 0, kv: { used: 0 } });
    } finally {
      m.dispose();
    }
  });
});
