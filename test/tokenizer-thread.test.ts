// Long prompts are tokenized off the calling thread (src/engine/tokenizer/thread.ts): the ids
// are the in-thread tokenizer's, and the thread that asked keeps running timers meanwhile.
import { afterAll, expect, test } from "bun:test";
import { MODEL_ID, MODEL_PATH } from "./e2e-harness.ts";
import { hostModel, INLINE_TOKENIZE_BYTES, ModelRegistry } from "../src/scheduler/models.ts";
import type { Generation } from "../src/generation.ts";
import { TokenizerThread } from "../src/engine/tokenizer/thread.ts";

const stories = hostModel({ id: MODEL_ID, ref: MODEL_PATH }, { arch: "llama", nCtx: 256 });
const story = "Once upon a time, there was a little girl named Lily. She liked to play in the park. ";
const thread = new TokenizerThread();
afterAll(() => thread.close());

/** Runs `work` while a 5 ms timer ticks; returns its result and the longest gap between ticks. */
async function whileTicking<T>(work: () => Promise<T>): Promise<{ value: T; longestGapMs: number }> {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => { const now = performance.now(); longest = Math.max(longest, now - last); last = now; }, 5);
  try {
    const value = await work();
    return { value, longestGapMs: Math.max(longest, performance.now() - last) };
  } finally {
    clearInterval(timer);
  }
}

test("the thread's ids equal the in-thread tokenizer's, special tokens and BOS included", async () => {
  for (const [text, opts] of [["Hello world", {}], ["</s> and <s> as text", { parseSpecial: false }], ["x</s>y", { parseSpecial: true, addBos: false }]] as const) {
    expect(await thread.encode(MODEL_PATH, text, opts)).toEqual(stories.tokenizer.encode(text, opts));
  }
  const failed = await thread.encode("/nonexistent.gguf", "x").then(() => null, (e: Error) => e.message);
  expect(failed).toContain("no such file");
});

test("an 8 MB prompt is tokenized off the HTTP thread by the registry: same ids, timers keep running", async () => {
  const input = story.repeat(Math.ceil(8_000_000 / story.length));
  expect(input.length).toBeGreaterThan(INLINE_TOKENIZE_BYTES);
  // a context large enough for it (stories15M's is 256): what a long-context model sees
  const big = { ...stories, nCtx: 4_000_000 };
  const gen = { input: { kind: "text", text: input }, tools: [], thinking: null, maxOutputTokens: 1 } as unknown as Generation;
  const registry = new ModelRegistry(null as never);
  try {
    await registry.prepare(big, gen); // starts the worker and builds its tokenizer
    Bun.gc(true); // the warm-up's garbage is not this measurement's pause
    const { value, longestGapMs } = await whileTicking(() => registry.prepare(big, gen));
    const t0 = performance.now();
    const inline = stories.tokenizer.encode(input, { addBos: true, parseSpecial: false });
    const inlineMs = performance.now() - t0;
    expect(value.promptIds).toEqual(inline);
    expect(value.maxTokens).toBe(1);
    console.log(`8 MB prompt: ${inline.length} tokens; in-thread ${inlineMs.toFixed(0)} ms (the thread held), off-thread longest timer gap ${longestGapMs.toFixed(0)} ms`);
    expect(longestGapMs).toBeLessThan(Math.max(100, inlineMs / 2));
  } finally {
    registry.close();
  }
});
