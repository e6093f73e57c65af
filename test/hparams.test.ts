// Hyperparameters of the real test models, of random qwen2/qwen3/llama3 GGUFs built by the
// engine's independent fixture serializer, clear errors for what cannot run, and the facts
// describeModel gives `info`.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { memorySource } from "../src/engine/model/byte-source.ts";
import { parseGGUF } from "../src/engine/model/gguf.ts";
import { writeGGUF } from "../src/engine/model/gguf-writer.ts";
import { describeModel, formatDescription } from "../src/engine/model/describe.ts";
import { llama3RopeFactors, readHParams, type HParams } from "../src/engine/model/hparams.ts";
import { openModel } from "../src/engine/model/open.ts";
import { GGMLType } from "../src/engine/model/types.ts";
import { buildRandomGGUF, findRandomModel } from "./support/random-gguf.ts";

/** 1.0f / sqrtf(n): the scales in float, as llama.cpp computes them. */
const invSqrtF32 = (n: number) => Math.fround(1 / Math.fround(Math.sqrt(n)));

const MODELS = join(import.meta.dir, "../../shared/models");
const tmp = mkdtempSync(join(tmpdir(), "valar-hp-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const hparamsOf = (ref: string) => {
  const m = openModel(ref);
  try {
    return readHParams(m);
  } finally {
    m.close();
  }
};
/** What a plain llama-style model of `layers` layers and head size `headDim` has beyond the basics. */
const llamaExtras = (layers: number, headDim: number): Omit<HParams, "arch" | "nLayer" | "nEmbd" | "nHead" | "nHeadKv" | "headDim" | "nFf" | "nCtx" | "nVocab" | "rmsEps" | "ropeTheta" | "ropeStyle" | "ropeScaling" | "ropeFreqsTensor" | "tiedEmbeddings" | "hasQKVBias" | "hasQKNorm"> => ({
  nRot: headDim, ropeAttnFactor: 1, ropeThetaLocal: 10000, embedScale: 1, qScale: 1, kqScale: invSqrtF32(headDim),
  attnSoftcap: 0, finalSoftcap: 0, logitScale: 1, residualScale: 1, ffnAct: "silu",
  layers: Array.from({ length: layers }, () => ({ window: 0, rope: "global" as const })),
});
const randomModel = (name: string) => parseGGUF(memorySource(name, buildRandomGGUF(findRandomModel(name))));

describe("real models", () => {
  test("stories15M (all three files)", () => {
    for (const kind of ["f32", "q8_0", "q4_0"]) {
      expect(hparamsOf(join(MODELS, `stories15M/stories15M-${kind}.gguf`))).toEqual({
        arch: "llama", nLayer: 6, nEmbd: 288, nHead: 6, nHeadKv: 6, headDim: 48, nFf: 768, nCtx: 256,
        nVocab: 32000, rmsEps: expect.closeTo(1e-5, 9) as unknown as number, ropeTheta: 10000, ropeStyle: "norm",
        ropeScaling: null, ropeFreqsTensor: null, tiedEmbeddings: true, hasQKVBias: false, hasQKNorm: false, ...llamaExtras(6, 48),
      });
    }
  });

  test("tinystories-656k directory", () => {
    expect(hparamsOf(join(MODELS, "tinystories-656k"))).toEqual({
      arch: "llama", nLayer: 2, nEmbd: 128, nHead: 8, nHeadKv: 4, headDim: 16, nFf: 384, nCtx: 512,
      nVocab: 2048, rmsEps: 1e-6, ropeTheta: 10000, ropeStyle: "norm",
      ropeScaling: null, ropeFreqsTensor: null, tiedEmbeddings: true, hasQKVBias: false, hasQKNorm: false, ...llamaExtras(2, 16),
    });
  });
});

describe("other architectures (random GGUFs)", () => {
  test("qwen2: NeoX RoPE, QKV bias, tied", () => {
    const hp = readHParams(randomModel("qwen2-f32"));
    expect(hp).toMatchObject({ arch: "qwen2", ropeStyle: "neox", hasQKVBias: true, hasQKNorm: false, tiedEmbeddings: true, nHead: 4, nHeadKv: 2, headDim: 64, ropeTheta: 1000000 });
    expect(readHParams(randomModel("qwen2-q8_0")).tiedEmbeddings).toBe(false);
  });

  test("qwen3: head_dim from key_length (not embd / heads), q/k norm", () => {
    const hp = readHParams(randomModel("qwen3-f32"));
    expect(hp).toMatchObject({ arch: "qwen3", ropeStyle: "neox", hasQKVBias: false, hasQKNorm: true, nEmbd: 256, nHead: 4, headDim: 128 });
  });

  test("llama3 rope: rope_freqs.weight tensor; factors match the fixture's", () => {
    const m = randomModel("llama3-rope-f32");
    const hp = readHParams(m);
    expect(hp.ropeFreqsTensor).toBe("rope_freqs.weight");
    const stored = m.read("rope_freqs.weight");
    const factors = llama3RopeFactors(hp, { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 64 });
    expect(factors).toEqual(new Float32Array(stored.buffer, stored.byteOffset, hp.headDim / 2));
  });

  test("phi3 (Phi-4-mini's rotation): partial RoPE, LongRoPE tensors and attention factor, q scaled before attention", () => {
    const hp = readHParams(randomModel("phi4-mini-f32"));
    expect(hp).toMatchObject({
      arch: "phi3", ropeStyle: "neox", headDim: 64, nRot: 48, ropeAttnFactor: Math.fround(1.19), qScale: 1 / 8, kqScale: 1,
      ropeScaling: { type: "longrope", shortFactors: "rope_factors_short.weight", longFactors: "rope_factors_long.weight", originalContext: 64 },
    });
  });

  test("attention scales are 1.0f / sqrtf(head size) in float: Phi-3-mini's 96-wide heads, a llama's 96", () => {
    // what C's 1.0f / sqrtf(96.0f) gives; Math.fround(1 / Math.sqrt(96)) is the next float up
    const expected = 0.10206206887960434;
    expect(Math.fround(1 / Math.sqrt(96))).not.toBe(expected);
    const phi3 = { ...findRandomModel("phi4-mini-f32"), nEmbd: 384, nRot: 96 };
    expect(readHParams(parseGGUF(memorySource("phi3-96", buildRandomGGUF(phi3))))).toMatchObject({ headDim: 96, qScale: expected, kqScale: 1 });
    const llama = { ...findRandomModel("llama-f32"), nEmbd: 384, nHead: 4, nHeadKv: 2 };
    expect(readHParams(parseGGUF(memorySource("llama-96", buildRandomGGUF(llama))))).toMatchObject({ headDim: 96, qScale: 1, kqScale: expected });
  });

  test("gemma2: sqrt(n_embd) embeddings, GeGLU, soft-caps from the file, a window on even layers", () => {
    const hp = readHParams(randomModel("gemma2-f32"));
    expect(hp).toMatchObject({
      arch: "gemma2", embedScale: 16, ffnAct: "gelu", qScale: invSqrtF32(48), kqScale: 1, attnSoftcap: 2.5, finalSoftcap: 12,
      layers: [{ window: 6, rope: "local" }, { window: 0, rope: "global" }], ropeThetaLocal: 10000,
    });
  });

  test("gemma3: q/k norms, its local layers' own RoPE base, linear scaling for the global ones, no soft-caps", () => {
    const hp = readHParams(randomModel("gemma3-f32"));
    expect(hp).toMatchObject({
      arch: "gemma3", hasQKNorm: true, attnSoftcap: 0, finalSoftcap: 0, ropeTheta: 1000000, ropeThetaLocal: 10000,
      ropeScaling: { type: "linear", factor: 4 }, layers: [{ window: 6, rope: "local" }, { window: 0, rope: "global" }],
    });
  });

  test("gemma2 without window keys: llama.cpp's 4096 on every other layer; gemma3 without: none", () => {
    const strip = (name: string, drop: string[]) => {
      const m = randomModel(name);
      for (const k of drop) m.metadata.delete(k);
      return readHParams(m);
    };
    const g2 = strip("gemma2-f32", ["gemma2.attention.sliding_window", "gemma2.attention.sliding_window_pattern", "gemma2.attn_logit_softcapping", "gemma2.final_logit_softcapping"]);
    expect(g2).toMatchObject({ layers: [{ window: 4096 }, { window: 0 }], attnSoftcap: 50, finalSoftcap: 30 });
    const g3 = strip("gemma3-f32", ["gemma3.attention.sliding_window", "gemma3.attention.sliding_window_pattern"]);
    expect(g3.layers.map((l) => l.window)).toEqual([0, 0]);
  });

  test("granite: its four scales; smollm3: every fourth layer without RoPE", () => {
    expect(readHParams(randomModel("granite-f32"))).toMatchObject({ embedScale: 6, residualScale: 0.5, kqScale: Math.fround(0.2), logitScale: 2 });
    expect(readHParams(randomModel("smollm3-f32")).layers.map((l) => l.rope)).toEqual(["global", "global", "global", "none"]);
  });

  test("llama3 factors for Llama-3.1-8B settings: 1 for short wavelengths, 8 for long, smooth between", () => {
    const f = llama3RopeFactors({ headDim: 128, ropeTheta: 500000 }, { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 });
    expect(f.length).toBe(64);
    expect(f[0]).toBe(1);
    expect(f[63]).toBe(8);
    for (let i = 1; i < 64; i++) expect(f[i]).toBeGreaterThanOrEqual(f[i - 1]);
    expect(f.some((x) => x > 1 && x < 8)).toBe(true);
  });
});

describe("errors", () => {
  const file = (name: string, md: Record<string, unknown>, tensors = [{ name: "token_embd.weight", type: GGMLType.F32, dims: [4, 8], data: new Uint8Array(128) }]) => {
    const path = join(tmp, `${name}.gguf`);
    writeGGUF(path, md as never, tensors);
    return path;
  };
  const base = {
    "general.architecture": "llama", "llama.embedding_length": 4, "llama.block_count": 1, "llama.feed_forward_length": 8,
    "llama.attention.head_count": 2, "llama.context_length": 16, "llama.attention.layer_norm_rms_epsilon": 1e-5,
  };

  test("a minimal llama file reads, with defaults for absent keys", () => {
    expect(hparamsOf(file("ok", base))).toMatchObject({ nHeadKv: 2, headDim: 2, ropeTheta: 10000, nVocab: 8 });
  });

  const cases: [string, Record<string, unknown>, RegExp, object[]?][] = [
    ["unknown-arch", { ...base, "general.architecture": "gptj" }, /unsupported architecture "gptj" \(supported: llama, qwen2, qwen3, phi3, gemma2, gemma3, granite, smollm3\)/],
    ["no-arch", { "general.name": "x" }, /no general\.architecture/],
    ["no-heads", { ...base, "llama.attention.head_count": undefined }, /missing or non-numeric metadata llama\.attention\.head_count/],
    ["bad-gqa", { ...base, "llama.attention.head_count_kv": 3 }, /2 heads cannot be grouped over 3 KV heads/],
    ["no-embd", base, /no token_embd\.weight/, [{ name: "x", type: GGMLType.F32, dims: [4], data: new Uint8Array(16) }]],
    ["qwen2-no-bias", Object.fromEntries(Object.entries(base).map(([k, v]) => [k.replace("llama", "qwen2"), v === "llama" ? "qwen2" : v])), /qwen2 model lacks its q\/k\/v biases/],
  ];
  for (const [name, md, problem, tensors] of cases) {
    test(name, () => {
      const clean = Object.fromEntries(Object.entries(md).filter(([, v]) => v !== undefined));
      const path = file(name, clean, tensors as never);
      expect(() => hparamsOf(path)).toThrow(problem);
      expect(() => hparamsOf(path)).toThrow(path);
    });
  }
});

describe("describeModel (what `info` prints)", () => {
  const describeRef = (ref: string) => {
    const m = openModel(ref);
    try {
      return describeModel(m);
    } finally {
      m.close();
    }
  };

  test("stories15M-q8_0", () => {
    const d = describeRef(join(MODELS, "stories15M/stories15M-q8_0.gguf"));
    expect(d).toMatchObject({
      format: "gguf", architecture: "llama", name: "stories15M", layers: 6, embedding: 288, heads: 6, kvHeads: 6,
      headDim: 48, ffn: 768, vocab: 32000, contextLength: 256, tokenizer: "llama (SentencePiece)", chatTemplate: false,
      tensorCount: 56, tensorsByType: { Q8_0: 43, F32: 13 }, fileBytes: 16879264,
    });
    // The weights are the file less its 0.7 MB header.
    expect(d.tensorBytes).toBeLessThan(d.fileBytes);
    expect(d.tensorBytes).toBeGreaterThan(d.fileBytes - 800_000);
    const text = formatDescription(d);
    expect(text).toMatch(/^architecture +llama$/m);
    expect(text).toMatch(/^tensors +56 \(Q8_0: 43, F32: 13\)$/m);
    expect(text).toMatch(/^chat template +no$/m);
    expect(text).toMatch(/^file bytes +16\.10 MiB \(16879264 bytes\)$/m);
    // Values start in one column.
    const columns = new Set(text.split("\n").map((l) => l.search(/(?<=\S  +)\S/)));
    expect(columns.size).toBe(1);
  });

  test("tinystories-656k directory", () => {
    expect(describeRef(join(MODELS, "tinystories-656k"))).toMatchObject({
      format: "safetensors", architecture: "llama", layers: 2, embedding: 128, heads: 8, kvHeads: 4, headDim: 16,
      ffn: 384, vocab: 2048, contextLength: 512, tokenizer: "tokenizer.json BPE (byte fallback)", chatTemplate: false,
      tensorCount: 20, tensorsByType: { F32: 20 }, tensorBytes: 2624000, fileBytes: 2626168,
    });
  });

  test("a gpt2-tokenizer qwen2 file with a chat template", () => {
    const path = join(tmp, "qwen-like.gguf");
    writeGGUF(path, {
      "general.architecture": "qwen2", "qwen2.block_count": 1, "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "qwen2",
      "tokenizer.chat_template": "{{ messages }}",
    }, [{ name: "token_embd.weight", type: GGMLType.F32, dims: [4, 8], data: new Uint8Array(128) }]);
    expect(describeRef(path)).toMatchObject({ architecture: "qwen2", layers: 1, vocab: 8, tokenizer: "gpt2 (byte-level BPE), pre qwen2", chatTemplate: true });
  });
});
