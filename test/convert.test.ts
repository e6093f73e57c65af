// convertToGGUF, checked by llama.cpp itself (node-llama-cpp, CPU): a rewritten stories15M file
// reproduces llama.cpp's recorded greedy ids, and the converted TinyStories-656K directory loads
// with a sane tokenizer and metadata and tells a story.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel, type Token } from "node-llama-cpp";
import { convertToGGUF } from "../src/engine/model/convert.ts";
import { ModelFileError } from "../src/engine/model/errors.ts";
import { openGGUF } from "../src/engine/model/gguf.ts";
import { llama3RopeFactors, readHParams } from "../src/engine/model/hparams.ts";
import { openModel } from "../src/engine/model/open.ts";
import { GGUFValueType } from "../src/engine/model/types.ts";

const MODELS = join(import.meta.dir, "../../shared/models");
const tmp = mkdtempSync(join(tmpdir(), "valar-convert-"));
/** llama.cpp loads and generates on 2 shared cores: allow it time. */
const SLOW = 60_000;
let llama: Llama;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** llama.cpp's greedy continuation of `ids`. */
async function greedy(model: LlamaModel, ids: readonly number[], steps: number): Promise<Token[]> {
  const context = await model.createContext({ contextSize: 128, threads: 1, sequences: 1 });
  try {
    const out: Token[] = [];
    for await (const t of context.getSequence().evaluate(ids as Token[], { temperature: 0 })) {
      out.push(t);
      if (out.length === steps) break;
    }
    return out;
  } finally {
    await context.dispose();
  }
}

describe("GGUF -> GGUF", () => {
  test("a converted stories15M-q8_0 keeps its typed metadata and llama.cpp's greedy ids", async () => {
    const src = join(MODELS, "stories15M/stories15M-q8_0.gguf");
    const out = join(tmp, "stories-copy.gguf");
    const m = openModel(src);
    await convertToGGUF(m, out, { name: "copy" });
    m.close();

    const a = openGGUF(src), b = openGGUF(out);
    expect(b.metadata.get("general.name")).toBe("copy");
    for (const [k, t] of a.metadataTypes) if (k !== "general.name") expect([k, b.metadataTypes.get(k)]).toEqual([k, t]);
    expect(b.tensors.map((t) => [t.name, t.type, t.dims])).toEqual(a.tensors.map((t) => [t.name, t.type, t.dims]));
    a.close();
    b.close();

    const ref = JSON.parse(readFileSync(join(MODELS, "stories15M/llama.cpp-greedy-q8_0.json"), "utf8")).cases[0];
    const model = await llama.loadModel({ modelPath: out, gpuLayers: 0 });
    try {
      expect([model.tokens.bos!, ...model.tokenize(ref.prompt)]).toEqual(ref.prompt_ids);
      expect(await greedy(model, ref.prompt_ids, 16)).toEqual(ref.greedy_ids.slice(0, 16));
    } finally {
      await model.dispose();
    }
  }, SLOW);

  test("refuses to overwrite unless asked", async () => {
    const m = openModel(join(MODELS, "stories15M/stories15M-q4_0.gguf"));
    try {
      await expect(convertToGGUF(m, join(tmp, "stories-copy.gguf"))).rejects.toThrow(ModelFileError);
    } finally {
      m.close();
    }
  });
});

describe("Hugging Face directory -> GGUF", () => {
  const out = join(tmp, "tinystories-656k.gguf");

  test("metadata as llama.cpp's converter writes it, weights as read", async () => {
    const hf = openModel(join(MODELS, "tinystories-656k"));
    try {
      await convertToGGUF(hf, out);
      const g = openGGUF(out);
      try {
        const typeOf = (k: string) => g.metadataTypes.get(k)?.type;
        expect(g.metadata.get("general.architecture")).toBe("llama");
        for (const [k, v] of [["llama.block_count", 2], ["llama.embedding_length", 128], ["llama.attention.head_count", 8],
          ["llama.attention.head_count_kv", 4], ["llama.feed_forward_length", 384], ["llama.context_length", 512],
          ["llama.rope.dimension_count", 16], ["general.file_type", 0]] as const) {
          expect([k, g.metadata.get(k), typeOf(k)]).toEqual([k, v, GGUFValueType.UINT32]);
        }
        expect(typeOf("llama.rope.freq_base")).toBe(GGUFValueType.FLOAT32);
        expect(g.metadata.get("llama.attention.layer_norm_rms_epsilon")).toBeCloseTo(1e-6, 12);
        expect(typeOf("llama.attention.layer_norm_rms_epsilon")).toBe(GGUFValueType.FLOAT32);
        expect([...g.metadata.keys()].some((k) => k.startsWith("tokenizer.huggingface."))).toBe(false);
        expect((g.metadata.get("tokenizer.ggml.tokens") as string[]).length).toBe(2048);
        expect(g.tensors.map((t) => [t.name, t.dims])).toEqual(hf.tensors.map((t) => [t.name, t.dims]));
        for (const t of hf.tensors) expect(g.read(t.name)).toEqual(hf.read(t.name));
      } finally {
        g.close();
      }
    } finally {
      hf.close();
    }
  }, SLOW);

  test("llama.cpp loads it: sane tokenizer and metadata, and it tells a story", async () => {
    const model = await llama.loadModel({ modelPath: out, gpuLayers: 0 });
    try {
      expect(model.trainContextSize).toBe(512);
      expect(model.fileInsights.totalLayers).toBeGreaterThanOrEqual(2);
      expect(model.tokens.bos as number | null).toBe(1);
      expect(model.tokens.eos as number | null).toBe(2);
      expect(model.detokenize([1 as Token], true)).toBe("<|start_story|>");
      const text = "Once upon a time, there was a little girl named Lily.";
      const ids = model.tokenize(text);
      expect(ids.length).toBeGreaterThan(5);
      expect(ids.length).toBeLessThan(text.length);
      expect(model.detokenize(ids)).toBe(text);
      const story = model.detokenize(await greedy(model, [1, ...model.tokenize("Once upon a time")], 40));
      // A 656K-parameter story model: plain English words, not byte soup.
      const words = story.split(/\s+/).filter(Boolean);
      expect(words.length).toBeGreaterThan(15);
      expect(words.filter((w) => /^[A-Za-z]+[.,!?"']*$/.test(w)).length / words.length).toBeGreaterThan(0.8);
    } finally {
      await model.dispose();
    }
  }, SLOW);
});

describe("Llama-3 RoPE scaling", () => {
  test("a llama3 rope_scaling config becomes llama.cpp's rope_freqs.weight tensor", async () => {
    // TinyStories with a Llama-3.1-style rope_scaling added to its config.
    const dir = join(tmp, "tinystories-llama3");
    mkdirSync(dir);
    for (const f of readdirSync(join(MODELS, "tinystories-656k"))) copyFileSync(join(MODELS, "tinystories-656k", f), join(dir, f));
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    const scaling = { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, rope_scaling: scaling }));
    const out = join(tmp, "tinystories-llama3.gguf");
    const hf = openModel(dir);
    await convertToGGUF(hf, out);
    hf.close();

    const g = openGGUF(out);
    try {
      expect([...g.metadata.keys()].filter((k) => k.includes("rope.scaling"))).toEqual([]);
      const hp = readHParams(g);
      expect(hp.ropeFreqsTensor).toBe("rope_freqs.weight");
      const stored = g.read("rope_freqs.weight");
      const want = llama3RopeFactors(hp, { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 64 });
      expect(new Float32Array(stored.buffer, stored.byteOffset, 8)).toEqual(want);
      // With a 64-token original context some of the 8 pair frequencies are scaled, some not.
      expect(want[0]).toBe(1);
      expect(want[7]).toBe(8);
    } finally {
      g.close();
    }
    const model = await llama.loadModel({ modelPath: out, gpuLayers: 0 });
    expect(model.trainContextSize).toBe(512);
    await model.dispose();
  }, SLOW);
});
