// Constrained decoding: masks from xgrammar over our real tokenizers. A deterministic stand-in for
// a model (seeded scores over the whole vocabulary) picks among the allowed tokens until the
// matcher terminates; the decoded text must parse as JSON and satisfy the schema, checked by a
// small validator independent of xgrammar.

import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { applyTokenBitmask, createGrammarFactory, GrammarCompileError, maskWords, TOOL_CALL_FORMATS, validateConstraint, type GrammarFactory, type GrammarMatcher, type OutputConstraint } from "../src/engine/grammar/index.ts";
import { acquireDevice, loadModel } from "../src/engine/index.ts";
import { openModel } from "../src/engine/model/open.ts";
import type { GGUFValue } from "../src/engine/model/types.ts";
import { createTokenizer, type Tokenizer } from "../src/engine/tokenizer/index.ts";
import { Rng } from "./support/random-gguf.ts";

const ROOT = resolve(import.meta.dir, "..");
const STORIES = resolve(ROOT, "../shared/models/stories15M/stories15M-q8_0.gguf");
const TINYSTORIES_HF = resolve(ROOT, "../shared/models/tinystories-656k");
const FIXTURES = join(import.meta.dir, "fixtures/tokenizer");

const isAllowed = (mask: Uint32Array, id: number) => ((mask[id >>> 5] >>> (id & 31)) & 1) === 1;
const allowedIds = (mask: Uint32Array, n: number) => {
  const out: number[] = [];
  for (let id = 0; id < n; id++) if (isAllowed(mask, id)) out.push(id);
  return out;
};

// ---------------------------------------------------------------------------------------------
// A small JSON Schema checker for the subset used here (independent of xgrammar)

type Schema = { type?: string; properties?: Record<string, Schema>; required?: string[]; enum?: unknown[]; items?: Schema; minItems?: number; maxItems?: number; minLength?: number; maxLength?: number; minimum?: number; maximum?: number; additionalProperties?: boolean };

function violations(value: unknown, schema: Schema, path = "$"): string[] {
  const bad: string[] = [];
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) bad.push(`${path}: ${JSON.stringify(value)} not in enum`);
  const kind = Array.isArray(value) ? "array" : value === null ? "null" : Number.isInteger(value) ? "integer" : typeof value;
  if (schema.type && !(schema.type === kind || (schema.type === "number" && kind === "integer"))) return [...bad, `${path}: ${kind}, expected ${schema.type}`];
  if (typeof value === "string") {
    const len = [...value].length;
    if (schema.minLength !== undefined && len < schema.minLength) bad.push(`${path}: shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && len > schema.maxLength) bad.push(`${path}: longer than ${schema.maxLength}`);
  }
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) bad.push(`${path}: below ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) bad.push(`${path}: above ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) bad.push(`${path}: fewer than ${schema.minItems} items`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems) bad.push(`${path}: more than ${schema.maxItems} items`);
    if (schema.items) value.forEach((v, i) => bad.push(...violations(v, schema.items!, `${path}[${i}]`)));
  }
  if (kind === "object") {
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? []) if (!(r in obj)) bad.push(`${path}: missing ${r}`);
    for (const [k, v] of Object.entries(obj)) {
      const sub = schema.properties?.[k];
      if (sub) bad.push(...violations(v, sub, `${path}.${k}`));
      else if (schema.additionalProperties === false) bad.push(`${path}: unexpected property ${k}`);
    }
  }
  return bad;
}

// ---------------------------------------------------------------------------------------------
// The stand-in model

/**
 * Each step scores every token with seeded noise and takes the best allowed one: a uniform pick
 * among allowed tokens. After `patience` steps it wants to finish: tokens that close something
 * (`"`, `}`, `]`, a stop token) score higher, so unbounded strings and objects end.
 */
function drive(tok: Tokenizer, matcher: GrammarMatcher, nVocab: number, seed: number, patience = 30, maxSteps = 400) {
  const rng = new Rng(seed);
  const mask = new Uint32Array(maskWords(nVocab));
  const stop = new Set(tok.stopIds);
  const closes = (id: number) => stop.has(id) || /["}\]]/.test(tok.tokenText(id));
  const ids: number[] = [];
  const fillMs: number[] = [];
  for (let step = 0; step < maxSteps && !matcher.isTerminated(); step++) {
    const t0 = performance.now();
    matcher.fillNextTokenBitmask(mask);
    fillMs.push(performance.now() - t0);
    let best = -1;
    let bestScore = -Infinity;
    for (let id = 0; id < nVocab; id++) {
      const noise = rng.uniform();
      if (!isAllowed(mask, id)) continue;
      const score = noise + (step >= patience && closes(id) ? 1 : 0);
      if (score > bestScore) { bestScore = score; best = id; }
    }
    if (best < 0) throw new Error(`no token allowed at step ${step} after ${JSON.stringify(tok.decode(ids))}`);
    if (!matcher.acceptToken(best)) throw new Error(`allowed token ${best} (${tok.tokenText(best)}) was rejected`);
    ids.push(best);
  }
  return { ids, fillMs, terminated: matcher.isTerminated() };
}

/** Drives to termination; returns the text before the stop token. */
function generate(tok: Tokenizer, factoryVocab: number, matcher: GrammarMatcher, seed: number) {
  const { ids, fillMs, terminated } = drive(tok, matcher, factoryVocab, seed);
  expect(terminated).toBe(true);
  const last = ids[ids.length - 1];
  expect(tok.stopIds).toContain(last);
  return { text: tok.decode(ids.slice(0, -1)), ids: ids.slice(0, -1), steps: ids.length, fillMs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const PERSON: Schema = {
  type: "object",
  properties: {
    name: { type: "string", minLength: 1, maxLength: 12 },
    age: { type: "integer", minimum: 0, maximum: 150 },
    mood: { enum: ["happy", "sad", "sleepy"] },
    pets: { type: "array", items: { type: "string", maxLength: 8 }, minItems: 1, maxItems: 3 },
  },
  required: ["name", "age", "mood", "pets"],
  additionalProperties: false,
};

// ---------------------------------------------------------------------------------------------

describe("stories15M (SentencePiece, byte fallback, 32000 tokens)", () => {
  let tok: Tokenizer;
  let factory: GrammarFactory;
  const id = (text: string) => {
    const found = Array.from({ length: tok.vocabSize }, (_, i) => i).find((i) => tok.tokenText(i) === text);
    if (found === undefined) throw new Error(`no token ${text}`);
    return found;
  };

  beforeAll(async () => {
    const file = openModel(STORIES);
    try { tok = createTokenizer(file); } finally { file.close(); }
    const t0 = performance.now();
    factory = await createGrammarFactory(tok, tok.vocabSize);
    console.log(`stories15M: grammar factory (vocabulary of ${tok.vocabSize}) in ${(performance.now() - t0).toFixed(0)} ms`);
  });

  test("vocabulary: byte fallback; control tokens excluded, EOS is the stop token", () => {
    expect(factory.vocab.vocabType).toBe("byte_fallback");
    expect(factory.vocab.stopIds).toEqual([tok.eosId!]);
    for (const special of [0, 1, 2]) expect(factory.vocab.encoded[special]).toBe(""); // <unk> <s> </s>
    expect(factory.vocab.excluded).toBe(3);
    expect(factory.vocab.encoded[id("▁{")]).toBe("▁{");
  });

  test("json_schema: seeded generations are valid JSON that satisfies the schema", async () => {
    let t0 = performance.now();
    const compiled = await factory.compile({ type: "json_schema", name: "person", schema: PERSON, strict: true } as OutputConstraint);
    const compileMs = performance.now() - t0;
    t0 = performance.now();
    await factory.compile({ type: "json_schema", schema: structuredClone(PERSON), strict: true });
    const cachedMs = performance.now() - t0;
    console.log(`stories15M: schema compiled in ${compileMs.toFixed(0)} ms, cached lookup ${cachedMs.toFixed(2)} ms`);
    const fill: number[] = [];
    const texts = new Set<string>();
    for (const seed of [1, 2, 3]) {
      const matcher = compiled.matcher();
      try {
        const { text, steps, fillMs } = generate(tok, tok.vocabSize, matcher, seed);
        fill.push(...fillMs);
        let value: unknown;
        expect(() => (value = JSON.parse(text))).not.toThrow();
        expect(violations(value, PERSON)).toEqual([]);
        texts.add(text);
        console.log(`  seed ${seed} (${steps} steps): ${text}`);
      } finally {
        matcher.dispose();
      }
    }
    expect(texts.size).toBe(3); // the seeds really explore different outputs
    const ms = median(fill);
    console.log(`stories15M: mask fill ${ms.toFixed(3)} ms median, ${Math.max(...fill).toFixed(2)} ms max over ${fill.length} steps`);
    expect(ms).toBeLessThan(5); // vs ~20 ms per decoded token
  });

  test("json_object: any object, valid JSON", async () => {
    const compiled = await factory.compile({ type: "json_object" });
    for (const seed of [7, 8]) {
      const matcher = compiled.matcher();
      const { text } = generate(tok, tok.vocabSize, matcher, seed);
      matcher.dispose();
      const value = JSON.parse(text);
      expect(typeof value).toBe("object");
      expect(Array.isArray(value)).toBe(false);
    }
  });

  test("masks forbid what would break the structure; forbidden tokens are rejected", async () => {
    const mask = new Uint32Array(maskWords(tok.vocabSize));
    const obj = (await factory.compile({ type: "json_object" })).matcher();
    obj.fillNextTokenBitmask(mask);
    expect(isAllowed(mask, id("{"))).toBe(true);
    const logits = new Float32Array(tok.vocabSize).map((_, i) => i % 7);
    const kept = applyTokenBitmask(logits, mask);
    expect(kept).toBe(allowedIds(mask, tok.vocabSize).length);
    expect(logits[id("{")]).toBe(id("{") % 7);
    expect(logits[id("a")]).toBe(-Infinity);
    for (const t of ["a", "▁{", "[", "\""]) expect(isAllowed(mask, id(t))).toBe(false); // only an object, no leading space
    expect(isAllowed(mask, tok.eosId!)).toBe(false);
    expect(isAllowed(mask, tok.bosId!)).toBe(false);
    expect(obj.acceptToken(id("a"))).toBe(false);
    expect(obj.acceptToken(id("{"))).toBe(true);
    obj.fillNextTokenBitmask(mask);
    expect(isAllowed(mask, id("a"))).toBe(false); // after `{` a letter cannot come
    expect(isAllowed(mask, id("\""))).toBe(true);
    expect(isAllowed(mask, id("}"))).toBe(true);
    expect(isAllowed(mask, tok.eosId!)).toBe(false);
    expect(obj.acceptToken(id("}"))).toBe(true);
    obj.fillNextTokenBitmask(mask);
    expect(allowedIds(mask, tok.vocabSize)).toEqual([tok.eosId!]); // complete: only the stop token
    expect(obj.isTerminated()).toBe(false);
    expect(obj.acceptToken(tok.eosId!)).toBe(true);
    expect(obj.isTerminated()).toBe(true);
    expect(obj.acceptToken(id("{"))).toBe(false);
    expect(obj.acceptToken(-1)).toBe(false);
    obj.dispose();

    // Required properties: `}` cannot close the object early; the first key is fixed.
    const person = (await factory.compile({ type: "json_schema", schema: PERSON })).matcher();
    expect(person.acceptToken(id("{"))).toBe(true);
    person.fillNextTokenBitmask(mask);
    expect(isAllowed(mask, id("}"))).toBe(false);
    expect(person.acceptToken(id("\""))).toBe(true);
    person.fillNextTokenBitmask(mask);
    expect(isAllowed(mask, id("name"))).toBe(true);
    expect(isAllowed(mask, id("age"))).toBe(false);
    for (const t of ["name", "\":", "▁\""]) expect(person.acceptToken(id(t))).toBe(true);
    person.fillNextTokenBitmask(mask); // inside a length-bounded string: no raw control characters
    expect(isAllowed(mask, id("a"))).toBe(true);
    expect(isAllowed(mask, id("<0x09>"))).toBe(false);
    expect(isAllowed(mask, id("<0x10>"))).toBe(false);
    expect(() => person.fillNextTokenBitmask(new Uint32Array(3))).toThrow(RangeError);
    person.dispose();
    expect(() => person.fillNextTokenBitmask(mask)).toThrow(/dispose/);
  });

  test("after_reasoning: a free <think> block, then the structure on the answer", async () => {
    const c: OutputConstraint = { type: "after_reasoning", open: "<think>", close: "</think>", then: { type: "json_object" } };
    // Byte tokens, one a byte: SentencePiece's encode would prefix a space.
    const byteId = (b: number) => id(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    const feed = (text: string, m: GrammarMatcher) => [...new TextEncoder().encode(text)].every((b) => m.acceptToken(byteId(b)));
    const compiled = await factory.compile(c);
    const ok = compiled.matcher();
    expect(feed('<think>\nThe user wants {an object}.\n</think>\n\n{"a": 1}', ok)).toBe(true);
    expect(ok.acceptToken(tok.eosId!)).toBe(true);
    expect(ok.isTerminated()).toBe(true);
    expect(feed('{"a": 1}', compiled.matcher())).toBe(false); // the block comes first
    expect(feed("<think>x</think>not json", compiled.matcher())).toBe(false); // and the answer is held to the structure
    // The prompt opened the block: the output starts inside it.
    const inside = (await factory.compile({ type: "after_reasoning", close: "</think>", then: { type: "json_object" } })).matcher();
    expect(feed('hm</think>{"a": 1}', inside)).toBe(true);
  });

  test("strict: false allows unlisted properties unless the schema forbids them", async () => {
    const schema = { type: "object", properties: { a: { type: "integer" } }, required: ["a"] };
    const prefix = ["{", "\"", "a", "\":", "▁", "1", ","];
    const mask = new Uint32Array(maskWords(tok.vocabSize));
    const canAddKey = async (strict: boolean) => {
      const m = (await factory.compile({ type: "json_schema", schema, strict })).matcher();
      for (const t of prefix) expect(m.acceptToken(id(t))).toBe(true);
      m.fillNextTokenBitmask(mask);
      m.dispose();
      return isAllowed(mask, id("▁\"")); // compact JSON: `, "`
    };
    expect(await canAddKey(false)).toBe(true);
    // Strict: after the only property there is nothing more to add, so not even a comma fits.
    const strict = (await factory.compile({ type: "json_schema", schema, strict: true })).matcher();
    for (const t of prefix.slice(0, -1)) expect(strict.acceptToken(id(t))).toBe(true);
    expect(strict.acceptToken(id(","))).toBe(false);
    strict.dispose();
  });

  test("invalid schemas throw GrammarCompileError naming the problem, and compiling goes on", async () => {
    const cases: [unknown, RegExp][] = [
      [{ type: "nope" }, /Unsupported type "nope"/],
      [{ type: "string", pattern: "((" }, /parenthesis is not closed/],
      [{ $ref: "#/$defs/missing" }, /\$defs/],
      [{ type: "nope" }, /Unsupported type "nope"/], // again: a failed schema leaves nothing stuck
      ["a string", /must be a JSON object/],
      [null, /must be a JSON object/],
    ];
    for (const [schema, message] of cases) {
      const c = { type: "json_schema", schema } as OutputConstraint;
      await expect(validateConstraint(c)).rejects.toThrow(message);
      await expect(factory.compile(c)).rejects.toBeInstanceOf(GrammarCompileError);
      await expect(factory.compile(c)).rejects.toThrow(message);
    }
    // Concurrent checks each get their own reason.
    const concurrent = await Promise.allSettled([{ type: "nope1" }, PERSON, { type: "nope2" }, { type: "string", pattern: "[" }]
      .map((schema) => validateConstraint({ type: "json_schema", schema })));
    expect(concurrent.map((r) => (r.status === "rejected" ? (r.reason as Error).message.replace(/^.*: /, "") : "ok"))).toEqual([
      'Unsupported type "nope1"', "ok", 'Unsupported type "nope2"', "Unclosed '['",
    ]);
    await expect(validateConstraint({ type: "xml" } as unknown as OutputConstraint)).rejects.toThrow(/unsupported output format type "xml"/);
    await expect(validateConstraint({ type: "json_schema", schema: PERSON, strict: "yes" } as unknown as OutputConstraint)).rejects.toThrow(/strict must be a boolean/);
    // The factory still compiles and matches after all those failures.
    const m = (await factory.compile({ type: "json_schema", schema: { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] } })).matcher();
    const { text } = generate(tok, tok.vocabSize, m, 5);
    m.dispose();
    expect(typeof JSON.parse(text).ok).toBe("boolean");
    await validateConstraint({ type: "json_schema", schema: PERSON, strict: true });
  });

  test("tool_calls (tool_choice required): one or more calls in the template's format, arguments valid", async () => {
    const weather: Schema = { type: "object", properties: { city: { type: "string", minLength: 1, maxLength: 10 }, unit: { enum: ["c", "f"] } }, required: ["city", "unit"], additionalProperties: false };
    const tools = [{ name: "get_weather", parameters: weather }, { name: "ping" }];
    const format = TOOL_CALL_FORMATS.hermes;
    const CALL = /^<tool_call>\n(\{.*\})\n<\/tool_call>$/s;
    const parseCalls = (text: string) => text.split("</tool_call>\n<tool_call>").map((part, i, all) => {
      const whole = (i > 0 ? "<tool_call>" : "") + part + (i < all.length - 1 ? "</tool_call>" : "");
      const m = CALL.exec(whole);
      if (!m) throw new Error(`not a tool call: ${JSON.stringify(whole)}`);
      return JSON.parse(m[1]) as { name: string; arguments: unknown };
    });
    for (const parallel of [true, false]) {
      const compiled = await factory.compile({ type: "tool_calls", tools, format, parallel });
      let calls = 0;
      for (const seed of [31, 32, 33]) {
        const m = compiled.matcher();
        const { text } = generate(tok, tok.vocabSize, m, seed);
        m.dispose();
        const parsed = parseCalls(text);
        if (!parallel) expect(parsed.length).toBe(1);
        calls += parsed.length;
        for (const call of parsed) {
          expect(["get_weather", "ping"]).toContain(call.name);
          if (call.name === "get_weather") expect(violations(call.arguments, weather)).toEqual([]);
          else expect(typeof call.arguments).toBe("object");
        }
      }
      console.log(`stories15M: tool_calls parallel=${parallel}: ${calls} calls in 3 generations`);
      // After one complete call: another may follow (after the separator) only if parallel.
      const first = compiled.matcher();
      const { ids } = generate(tok, tok.vocabSize, first, 34);
      first.dispose();
      const replay = compiled.matcher();
      for (let i = 0; i < ids.length; i++) {
        expect(replay.acceptToken(ids[i])).toBe(true);
        if (tok.decode(ids.slice(0, i + 1)).endsWith("</tool_call>")) break;
      }
      const after = new Uint32Array(maskWords(tok.vocabSize));
      replay.fillNextTokenBitmask(after);
      replay.dispose();
      expect(isAllowed(after, tok.eosId!)).toBe(true);
      expect(isAllowed(after, id("<0x0A>"))).toBe(parallel);
    }
    // The first token must begin a call: plain text is not allowed.
    const mask = new Uint32Array(maskWords(tok.vocabSize));
    const m = (await factory.compile({ type: "tool_calls", tools, format })).matcher();
    m.fillNextTokenBitmask(mask);
    expect(isAllowed(mask, id("<"))).toBe(true);
    expect(isAllowed(mask, id("▁The"))).toBe(false);
    expect(isAllowed(mask, tok.eosId!)).toBe(false);
    m.dispose();

    const bad: [unknown, RegExp][] = [
      [{ type: "tool_calls", tools: [], format }, /non-empty array/],
      [{ type: "tool_calls", tools: [{ name: "a" }, { name: "a" }], format }, /appears twice/],
      [{ type: "tool_calls", tools: [{ name: "" }], format }, /name must be a non-empty string/],
      [{ type: "tool_calls", tools: [{ name: "a", parameters: { type: "nope" } }], format }, /Unsupported type "nope"/],
      [{ type: "tool_calls", tools: [{ name: "a" }], format: { begin: "x", end: "y", separator: "" } }, /\{name\}/],
    ];
    for (const [c, message] of bad) {
      await expect(validateConstraint(c as OutputConstraint)).rejects.toThrow(message);
      await expect(factory.compile(c as OutputConstraint)).rejects.toBeInstanceOf(GrammarCompileError);
    }
  });
});

describe("stories15M on the GPU engine, greedy under the mask", () => {
  test("the real model's constrained output is valid JSON for the schema", async () => {
    const file = openModel(STORIES);
    const tok = createTokenizer(file);
    const device = await acquireDevice();
    const model = await loadModel(device, file);
    try {
      const factory = await createGrammarFactory(tok, model.nVocab);
      const prompt = tok.encode("Once upon a time, a girl named Lily had a pet. Her details:", { addBos: true });
      // (json_object is not tried: greedy stories15M writes its story into the first key and
      // never closes it; bounded fields are what make a small model finish.)
      const schema: Schema = { ...PERSON, properties: { name: PERSON.properties!.name, mood: PERSON.properties!.mood }, required: ["name", "mood"] };
      for (const c of [{ type: "json_schema", schema }] as OutputConstraint[]) {
        const matcher = (await factory.compile(c)).matcher();
        const mask = new Uint32Array(maskWords(model.nVocab));
        const out: number[] = [];
        model.reset();
        let logits = await model.evalLogits(prompt);
        const t0 = performance.now();
        while (!matcher.isTerminated() && out.length < 160) {
          matcher.fillNextTokenBitmask(mask);
          expect(applyTokenBitmask(logits, mask)).toBeGreaterThan(0);
          let best = 0;
          for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
          expect(matcher.acceptToken(best)).toBe(true);
          out.push(best);
          if (!matcher.isTerminated()) logits = await model.evalLogits([best]);
        }
        matcher.dispose();
        if (!matcher.isTerminated()) throw new Error(`not terminated after ${out.length} tokens: ${JSON.stringify(tok.decode(out))}`);
        const text = tok.decode(out.slice(0, -1));
        console.log(`stories15M ${c.type}, greedy (${out.length} tokens, ${((performance.now() - t0) / out.length).toFixed(0)} ms/token with evalLogits): ${text}`);
        const value = JSON.parse(text);
        expect(violations(value, schema)).toEqual([]);
      }
    } finally {
      model.dispose();
      device.destroy();
      file.close();
    }
  }, 120_000);
});

describe("byte-level BPE tokenizers", () => {
  test("gpt2 kind (recorded vocabulary), with padding rows beyond the tokenizer", async () => {
    const fixture = JSON.parse(readFileSync(join(FIXTURES, "bpe-gpt-2.json"), "utf8")) as { metadata: Record<string, unknown> };
    const tok = createTokenizer({ metadata: new Map(Object.entries(fixture.metadata) as [string, GGUFValue][]) });
    expect(tok.kind).toBe("gpt2");
    const nVocab = tok.vocabSize + 10; // a logits row count padded past the vocabulary
    const factory = await createGrammarFactory(tok, nVocab);
    expect(factory.vocab.vocabType).toBe("byte_level");
    const compiled = await factory.compile({ type: "json_schema", schema: PERSON });
    for (const seed of [11, 13, 16]) {
      const m = compiled.matcher();
      const mask = new Uint32Array(maskWords(nVocab));
      m.fillNextTokenBitmask(mask);
      for (let pad = tok.vocabSize; pad < nVocab; pad++) expect(isAllowed(mask, pad)).toBe(false);
      const { text } = generate(tok, nVocab, m, seed);
      m.dispose();
      expect(violations(JSON.parse(text), PERSON)).toEqual([]);
    }
    // Control tokens (<|im_start|>, <tool_call>, ...) never appear in constrained text.
    const special = ["<|im_start|>", "<|im_end|>", "<|begin_of_text|>"].map((t) => tok.encode(t, { addBos: false, parseSpecial: true })[0]);
    for (const s of special) expect(factory.vocab.encoded[s]).toBe("");
  });

  test("hf-bpe kind: tokenizer.json's decoder decides the vocabulary type", async () => {
    const qwen = JSON.parse(readFileSync(join(FIXTURES, "hf-qwen2.json"), "utf8")) as { tokenizerJson: string };
    const byteLevel = createTokenizer({ metadata: new Map([["tokenizer.huggingface.json", qwen.tokenizerJson]]) });
    expect(byteLevel.kind).toBe("hf-bpe");
    const f1 = await createGrammarFactory(byteLevel, byteLevel.vocabSize);
    expect(f1.vocab.vocabType).toBe("byte_level");

    const file = openModel(TINYSTORIES_HF);
    let spmLike: Tokenizer;
    try { spmLike = createTokenizer(file); } finally { file.close(); }
    const f2 = await createGrammarFactory(spmLike, spmLike.vocabSize);
    expect(f2.vocab.vocabType).toBe("byte_fallback");
    const m1 = (await f1.compile({ type: "json_object" })).matcher();
    expect(typeof JSON.parse(generate(byteLevel, byteLevel.vocabSize, m1, 21).text)).toBe("object");
    m1.dispose();

    // TinyStories-656K's 2048 tokens have neither `{` nor byte tokens: no object can start, and
    // the mask says so (the engine must end such a generation rather than sample from nothing).
    const mask = new Uint32Array(maskWords(spmLike.vocabSize));
    const noObject = (await f2.compile({ type: "json_object" })).matcher();
    noObject.fillNextTokenBitmask(mask);
    expect(allowedIds(mask, spmLike.vocabSize)).toEqual([]);
    const logits = new Float32Array(spmLike.vocabSize).fill(1);
    expect(applyTokenBitmask(logits, mask)).toBe(0);
    expect(logits.every((x) => x === -Infinity)).toBe(true);
    noObject.dispose();
    const words = { type: "string", minLength: 1, maxLength: 20 };
    const m2 = (await f2.compile({ type: "json_schema", schema: words })).matcher();
    const { text } = generate(spmLike, spmLike.vocabSize, m2, 22);
    m2.dispose();
    expect(violations(JSON.parse(text), words)).toEqual([]);
  });
});
