// Hugging Face directory reader on the real TinyStories-656K checkpoint: synthesized metadata,
// GGUF tensor names and dims, the rotate-half -> interleaved q/k permutation (checked by what it
// must preserve: RoPE attention scores), sharded checkpoints through the index file, openModel,
// and clear errors for broken directories.

import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ModelFileError } from "../src/engine/model/errors.ts";
import { openHFDir } from "../src/engine/model/hf-dir.ts";
import { readHParams } from "../src/engine/model/hparams.ts";
import { openModel } from "../src/engine/model/open.ts";
import { GGMLType } from "../src/engine/model/types.ts";

const DIR = join(import.meta.dir, "../../shared/models/tinystories-656k");
const tmp = mkdtempSync(join(tmpdir(), "valar-st-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The checkpoint's raw tensors, parsed here independently of the reader under test. */
function rawTensors(file: string): Map<string, { shape: number[]; data: Float32Array }> {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, e] of Object.entries<any>(header)) {
    if (name === "__metadata__") continue;
    const [b, end] = e.data_offsets;
    const copy = new Uint8Array(bytes.subarray(8 + n + b, 8 + n + end));
    out.set(name, { shape: e.shape, data: new Float32Array(copy.buffer) });
  }
  return out;
}

/** Writes a safetensors file (header padded to 8 bytes, as the reference writer does). */
function writeSafetensors(path: string, tensors: [string, { shape: number[]; data: Float32Array }][]) {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let off = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, Buffer.from(json), ...tensors.map(([, t]) => Buffer.from(t.data.buffer))]));
}

const f32 = (b: Uint8Array) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);

describe("tinystories-656k directory", () => {
  const m = openHFDir(DIR);
  afterAll(() => m.close());
  const raw = rawTensors(join(DIR, "model.safetensors"));

  test("metadata synthesized from config.json and the tokenizer files", () => {
    const md = m.metadata;
    expect(m.format).toBe("safetensors");
    expect(md.get("general.architecture")).toBe("llama");
    expect(md.get("llama.embedding_length")).toBe(128);
    expect(md.get("llama.block_count")).toBe(2);
    expect(md.get("llama.attention.head_count")).toBe(8);
    expect(md.get("llama.attention.head_count_kv")).toBe(4);
    expect(md.get("llama.feed_forward_length")).toBe(384);
    expect(md.get("llama.context_length")).toBe(512);
    expect(md.get("llama.attention.layer_norm_rms_epsilon")).toBe(1e-6);
    expect(md.get("llama.rope.freq_base")).toBe(10000);
    expect(md.get("llama.rope.dimension_count")).toBe(16);
    expect(md.has("llama.attention.key_length")).toBe(false); // config has no head_dim
    expect(md.has("llama.rope.scaling.type")).toBe(false); // rope_scaling: null
    expect(JSON.parse(md.get("tokenizer.huggingface.json") as string).model.type).toBe("BPE");
    expect(JSON.parse(md.get("tokenizer.huggingface.config") as string).bos_token).toBe("<|start_story|>");
    expect(md.has("tokenizer.chat_template")).toBe(false);
  });

  test("tensors under GGUF names, ggml dims, tied embedding from lm_head", () => {
    expect(m.tensors.length).toBe(2 * 9 + 2);
    const t = (name: string) => m.tensors.find((x) => x.name === name)!;
    expect(t("token_embd.weight").dims).toEqual([128, 2048]);
    expect(m.tensors.some((x) => x.name === "output.weight")).toBe(false);
    expect(t("blk.1.attn_q.weight").dims).toEqual([128, 128]);
    expect(t("blk.1.attn_k.weight").dims).toEqual([128, 64]);
    expect(t("blk.0.ffn_down.weight").dims).toEqual([384, 128]);
    expect(t("blk.0.ffn_gate.weight").dims).toEqual([128, 384]);
    expect(t("output_norm.weight").dims).toEqual([128]);
    expect(m.tensors.every((x) => x.type === GGMLType.F32)).toBe(true);
    // The stored lm_head is the embedding; other tensors come back unchanged.
    expect(f32(m.read("token_embd.weight"))).toEqual(raw.get("lm_head.weight")!.data);
    expect(f32(m.read("blk.1.ffn_down.weight"))).toEqual(raw.get("model.layers.1.mlp.down_proj.weight")!.data);
    expect(f32(m.read("blk.0.attn_v.weight"))).toEqual(raw.get("model.layers.0.self_attn.v_proj.weight")!.data);
  });

  test("q/k permutation turns rotate-half RoPE into interleaved RoPE with identical attention scores", () => {
    const nHead = 8, nKv = 4, hd = 16, nEmbd = 128, theta = 10000;
    const matvec = (w: Float32Array, rows: number, x: Float64Array) =>
      Float64Array.from({ length: rows }, (_, r) => x.reduce((s, xi, c) => s + w[r * nEmbd + c] * xi, 0));
    // Rotation of dimension pair i of a head by pos * theta^(-2i/hd); the layouts differ in which
    // two components form pair i: (i, i + hd/2) for rotate-half, (2i, 2i + 1) for interleaved.
    const rope = (v: Float64Array, pos: number, heads: number, pair: (i: number) => [number, number]) => {
      const out = v.slice();
      for (let h = 0; h < heads; h++) {
        for (let i = 0; i < hd / 2; i++) {
          const a = pos * Math.pow(theta, (-2 * i) / hd);
          const [p, q] = pair(i).map((k) => h * hd + k);
          out[p] = v[p] * Math.cos(a) - v[q] * Math.sin(a);
          out[q] = v[p] * Math.sin(a) + v[q] * Math.cos(a);
        }
      }
      return out;
    };
    const scores = (q: Float64Array, k: Float64Array) =>
      Array.from({ length: nHead }, (_, h) => {
        const kh = Math.floor(h / (nHead / nKv));
        let s = 0;
        for (let d = 0; d < hd; d++) s += q[h * hd + d] * k[kh * hd + d];
        return s;
      });
    let seed = 1;
    const random = () => Float64Array.from({ length: nEmbd }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5);
    // A query at position 9 against a key from another token at position 2.
    const xq = random(), xk = random(), pq = 9, pk = 2;
    const hfQ = matvec(raw.get("model.layers.0.self_attn.q_proj.weight")!.data, nHead * hd, xq);
    const hfK = matvec(raw.get("model.layers.0.self_attn.k_proj.weight")!.data, nKv * hd, xk);
    const gQ = matvec(f32(m.read("blk.0.attn_q.weight")), nHead * hd, xq);
    const gK = matvec(f32(m.read("blk.0.attn_k.weight")), nKv * hd, xk);
    const halfSplit = (i: number): [number, number] => [i, i + hd / 2];
    const interleaved = (i: number): [number, number] => [2 * i, 2 * i + 1];
    const want = scores(rope(hfQ, pq, nHead, halfSplit), rope(hfK, pk, nKv, halfSplit));
    const got = scores(rope(gQ, pq, nHead, interleaved), rope(gK, pk, nKv, interleaved));
    for (let h = 0; h < nHead; h++) expect(got[h]).toBeCloseTo(want[h], 4);
    // And the mix-up is detectable: unpermuted weights with interleaved RoPE give other scores.
    const wrong = scores(rope(hfQ, pq, nHead, interleaved), rope(hfK, pk, nKv, interleaved));
    expect(wrong.some((s, h) => Math.abs(s - want[h]) > 1e-3)).toBe(true);
  });

  test("a sharded copy (model.safetensors.index.json) reads the same", () => {
    const dir = join(tmp, "sharded");
    mkdirSync(dir);
    for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(DIR, f), join(dir, f));
    // Both names stored this time (tie_word_embeddings: true keeps only token_embd).
    const entries = [...raw].concat([["model.embed_tokens.weight", raw.get("lm_head.weight")!]]);
    const shards = [entries.slice(0, 9), entries.slice(9)];
    const weightMap: Record<string, string> = {};
    shards.forEach((s, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(join(dir, file), s);
      for (const [name] of s) weightMap[name] = file;
    });
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const s = openModel(dir);
    try {
      expect(new Set(s.tensors.map((t) => t.file)).size).toBe(2);
      expect(s.tensors.map((t) => [t.name, t.dims])).toEqual(m.tensors.map((t) => [t.name, t.dims]));
      for (const t of m.tensors) expect(s.read(t.name)).toEqual(m.read(t.name));
      expect(s.metadata.get("llama.attention.head_count_kv")).toBe(4);
      expect(s.metadata.get("tokenizer.huggingface.json")).toBe(m.metadata.get("tokenizer.huggingface.json"));
    } finally {
      s.close();
    }
  });
});

describe("openModel and errors", () => {
  const errorOf = (f: () => unknown): Error => {
    try {
      f();
    } catch (e) {
      return e as Error;
    }
    throw new Error("expected an error");
  };

  test("opens a .gguf file and a directory", () => {
    const g = openModel(join(DIR, "../stories15M/stories15M-q8_0.gguf"));
    expect(g.format).toBe("gguf");
    g.close();
    const d = openModel(DIR);
    expect(d.format).toBe("safetensors");
    d.close();
  });

  test("missing path, directory without config.json, unknown extension", () => {
    const missing = errorOf(() => openModel(join(tmp, "nope.gguf")));
    expect(missing).toBeInstanceOf(ModelFileError);
    expect(missing.message).toMatch(/nope\.gguf: no such file/);
    const empty = join(tmp, "empty");
    mkdirSync(empty);
    expect(errorOf(() => openModel(empty)).message).toMatch(/empty: directory has no config\.json/);
    const txt = join(tmp, "model.bin");
    writeFileSync(txt, "hello");
    expect(errorOf(() => openModel(txt)).message).toMatch(/model\.bin: unknown model file extension "\.bin"/);
  });

  const brokenDir = (name: string, files: Record<string, string | Uint8Array>) => {
    const dir = join(tmp, name);
    mkdirSync(dir);
    for (const [f, content] of Object.entries(files)) writeFileSync(join(dir, f), content);
    return dir;
  };
  const config = readFileSync(join(DIR, "config.json"), "utf8");

  test("unsupported model_type, bad JSON, missing weights, missing shard, corrupt safetensors", () => {
    const cases: [Record<string, string | Uint8Array>, RegExp][] = [
      [{ "config.json": JSON.stringify({ ...JSON.parse(config), model_type: "gpt_neox" }) }, /config\.json: unsupported model_type "gpt_neox"/],
      [{ "config.json": "{ not json" }, /config\.json: invalid JSON/],
      [{ "config.json": config }, /no \*\.safetensors weight files/],
      [{ "config.json": config, "model.safetensors.index.json": JSON.stringify({ weight_map: { "lm_head.weight": "a.safetensors" } }) }, /a\.safetensors: shard named in model\.safetensors\.index\.json is missing/],
      [{ "config.json": config, "model.safetensors": new Uint8Array([1, 2, 3]) }, /model\.safetensors: truncated file/],
      [{ "config.json": config, "model.safetensors": new Uint8Array([255, 255, 255, 255, 0, 0, 0, 0, 1]) }, /model\.safetensors: header length \d+ is absurd/],
      [{ "config.json": JSON.stringify({ ...JSON.parse(config), hidden_size: undefined }) }, /missing or non-numeric "hidden_size"/],
    ];
    cases.forEach(([files, problem], i) => {
      const err = errorOf(() => openModel(brokenDir(`broken${i}`, files)));
      expect(err).toBeInstanceOf(ModelFileError);
      expect(err.message).toMatch(problem);
    });
  });

  test("a tensor past the end of a safetensors file", () => {
    const dir = brokenDir("short", { "config.json": config });
    copyFileSync(join(DIR, "model.safetensors"), join(dir, "model.safetensors"));
    const full = readFileSync(join(dir, "model.safetensors"));
    writeFileSync(join(dir, "model.safetensors"), full.subarray(0, full.length - 100));
    expect(errorOf(() => openModel(dir)).message).toMatch(/tensor "model\.norm\.weight" .* extends past the end of the file/);
  });
});

describe("qwen2 / qwen3 / biased llama checkpoints (small random directories)", () => {
  const L = 0, nEmbd = 16, nHead = 2, nKv = 1, hd = 8;
  const rand = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i));
  const makeDir = (name: string, modelType: string, extra: Record<string, number[]>, config: object = {}) => {
    const dir = join(tmp, name);
    mkdirSync(dir);
    const shapes: Record<string, number[]> = {
      "model.embed_tokens.weight": [32, nEmbd], "model.norm.weight": [nEmbd],
      [`model.layers.${L}.self_attn.q_proj.weight`]: [nHead * hd, nEmbd], [`model.layers.${L}.self_attn.k_proj.weight`]: [nKv * hd, nEmbd],
      [`model.layers.${L}.self_attn.v_proj.weight`]: [nKv * hd, nEmbd], [`model.layers.${L}.self_attn.o_proj.weight`]: [nEmbd, nHead * hd],
      [`model.layers.${L}.mlp.gate_proj.weight`]: [24, nEmbd], [`model.layers.${L}.mlp.up_proj.weight`]: [24, nEmbd],
      [`model.layers.${L}.mlp.down_proj.weight`]: [nEmbd, 24], [`model.layers.${L}.input_layernorm.weight`]: [nEmbd],
      [`model.layers.${L}.post_attention_layernorm.weight`]: [nEmbd], ...extra,
    };
    const tensors = Object.entries(shapes).map(([n, shape], i) => [n, { shape, data: rand(shape.reduce((a, b) => a * b, 1), i + 1) }] as [string, { shape: number[]; data: Float32Array }]);
    writeSafetensors(join(dir, "model.safetensors"), tensors);
    writeFileSync(join(dir, "config.json"), JSON.stringify({
      model_type: modelType, hidden_size: nEmbd, num_hidden_layers: 1, num_attention_heads: nHead, num_key_value_heads: nKv,
      intermediate_size: 24, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 1000000, vocab_size: 32,
      tie_word_embeddings: true, ...config,
    }));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ chat_template: "{% for m in messages %}{{ m.content }}{% endfor %}" }));
    return { dir, raw: new Map(tensors) };
  };

  test("qwen2: biases mapped, q/k not permuted (NeoX RoPE), chat template from tokenizer_config.json", () => {
    const { dir, raw } = makeDir("qwen2", "qwen2", {
      [`model.layers.${L}.self_attn.q_proj.bias`]: [nHead * hd], [`model.layers.${L}.self_attn.k_proj.bias`]: [nKv * hd],
      [`model.layers.${L}.self_attn.v_proj.bias`]: [nKv * hd],
    });
    const m = openModel(dir);
    try {
      expect(m.metadata.get("general.architecture")).toBe("qwen2");
      expect(m.metadata.get("qwen2.rope.freq_base")).toBe(1000000);
      expect(m.metadata.get("tokenizer.chat_template")).toBe("{% for m in messages %}{{ m.content }}{% endfor %}");
      expect(m.tensors.find((t) => t.name === "blk.0.attn_k.bias")!.dims).toEqual([nKv * hd]);
      expect(f32(m.read("blk.0.attn_q.weight"))).toEqual(raw.get(`model.layers.${L}.self_attn.q_proj.weight`)!.data);
      expect(f32(m.read("blk.0.attn_q.bias"))).toEqual(raw.get(`model.layers.${L}.self_attn.q_proj.bias`)!.data);
    } finally {
      m.close();
    }
  });

  test("qwen3: head_dim -> key_length, q/k norms mapped", () => {
    const { dir } = makeDir("qwen3", "qwen3", {
      [`model.layers.${L}.self_attn.q_norm.weight`]: [hd], [`model.layers.${L}.self_attn.k_norm.weight`]: [hd],
    }, { head_dim: hd });
    const m = openModel(dir);
    try {
      expect(m.metadata.get("qwen3.attention.key_length")).toBe(hd);
      expect(readHParams(m)).toMatchObject({ arch: "qwen3", ropeStyle: "neox", hasQKNorm: true, headDim: hd, tiedEmbeddings: true });
      expect(m.tensors.filter((t) => /attn_[qk]_norm/.test(t.name)).map((t) => [t.name, t.dims])).toEqual([
        ["blk.0.attn_q_norm.weight", [hd]], ["blk.0.attn_k_norm.weight", [hd]],
      ]);
    } finally {
      m.close();
    }
  });

  test("llama with attention bias: q/k biases permuted like their rows; llama3 rope scaling in metadata", () => {
    const { dir, raw } = makeDir("llama-bias", "llama", {
      [`model.layers.${L}.self_attn.q_proj.bias`]: [nHead * hd], [`model.layers.${L}.self_attn.k_proj.bias`]: [nKv * hd],
    }, { rope_scaling: { rope_type: "llama3", factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } });
    const m = openModel(dir);
    try {
      const b = raw.get(`model.layers.${L}.self_attn.k_proj.bias`)!.data;
      // One KV head of 8: interleaved order takes rows 0,4,1,5,2,6,3,7.
      expect(Array.from(f32(m.read("blk.0.attn_k.bias")))).toEqual([0, 4, 1, 5, 2, 6, 3, 7].map((i) => b[i]));
      expect(m.metadata.get("llama.rope.scaling.type")).toBe("llama3");
      expect(m.metadata.get("llama.rope.scaling.factor")).toBe(32);
      expect(m.metadata.get("llama.rope.scaling.original_context_length")).toBe(8192);
      expect(readHParams(m)).toMatchObject({
        hasQKVBias: true, ropeStyle: "norm",
        ropeScaling: { type: "llama3", factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 },
      });
    } finally {
      m.close();
    }
  });

  test("an unmappable tensor name is a clear error", () => {
    const { dir } = makeDir("odd", "llama", { "model.layers.0.mystery.weight": [4] });
    expect(() => openModel(dir)).toThrow(/tensor "model\.layers\.0\.mystery\.weight" has no GGUF equivalent/);
  });
});
