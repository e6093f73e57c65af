// GGUF reader and writer: real facts of the stories15M files, lazy reads, a byte-exact rewrite,
// typed round trips, and a clear ModelFileError for every kind of broken file.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ByteSource } from "../src/engine/model/byte-source.ts";
import { openFileSource } from "../src/engine/model/file-source.ts";
import { ModelFileError, openGGUF, parseGGUF } from "../src/engine/model/gguf.ts";
import { gguf, writeGGUF } from "../src/engine/model/gguf-writer.ts";
import { tensorBytes, typeTraits } from "../src/engine/model/ggml-types.ts";
import { GGMLType, GGUFValueType } from "../src/engine/model/types.ts";

const STORIES = join(import.meta.dir, "../../shared/models/stories15M");
const tmp = mkdtempSync(join(tmpdir(), "valar-gguf-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("ggml type traits", () => {
  test("block sizes and bytes per block match ggml", () => {
    const expected: [GGMLType, number, number][] = [
      [GGMLType.F32, 1, 4], [GGMLType.F16, 1, 2], [GGMLType.BF16, 1, 2], [GGMLType.Q8_0, 32, 34],
      [GGMLType.Q4_0, 32, 18], [GGMLType.Q4_1, 32, 20], [GGMLType.Q5_0, 32, 22], [GGMLType.Q5_1, 32, 24],
      [GGMLType.Q2_K, 256, 84], [GGMLType.Q3_K, 256, 110], [GGMLType.Q4_K, 256, 144], [GGMLType.Q5_K, 256, 176],
      [GGMLType.Q6_K, 256, 210], [GGMLType.Q8_K, 256, 292], [GGMLType.I8, 1, 1], [GGMLType.I16, 1, 2],
      [GGMLType.I32, 1, 4], [GGMLType.I64, 1, 8], [GGMLType.F64, 1, 8],
    ];
    for (const [type, bs, bytes] of expected) {
      expect([typeTraits(type).blockSize, typeTraits(type).bytesPerBlock]).toEqual([bs, bytes]);
    }
    expect(tensorBytes(GGMLType.Q8_0, [288, 32000])).toBe(9 * 34 * 32000);
    expect(tensorBytes(GGMLType.Q6_K, [512, 3])).toBe(2 * 210 * 3);
    expect(() => tensorBytes(GGMLType.Q4_K, [100])).toThrow(/block size 256/);
    expect(() => typeTraits(99)).toThrow(/unknown ggml tensor type 99/);
  });
});

describe("stories15M GGUF files", () => {
  const files: [string, Record<string, number>][] = [
    ["f32", { F32: 56 }],
    ["q8_0", { F32: 13, Q8_0: 43 }],
    ["q4_0", { F32: 13, Q8_0: 1, Q4_0: 42 }],
  ];
  for (const [kind, types] of files) {
    test(`${kind}: metadata, tensor infos and types`, () => {
      const m = openGGUF(join(STORIES, `stories15M-${kind}.gguf`));
      try {
        expect(m.version).toBe(3);
        expect(m.alignment).toBe(32);
        const md = m.metadata;
        expect(md.get("general.architecture")).toBe("llama");
        expect(md.get("llama.embedding_length")).toBe(288);
        expect(md.get("llama.block_count")).toBe(6);
        expect(md.get("llama.attention.head_count")).toBe(6);
        expect(md.get("llama.attention.head_count_kv")).toBe(6);
        expect(md.get("llama.feed_forward_length")).toBe(768);
        expect(md.get("llama.context_length")).toBe(256);
        expect(md.get("llama.attention.layer_norm_rms_epsilon")).toBeCloseTo(1e-5, 9);
        expect(m.metadataTypes.get("llama.rope.freq_base")).toEqual({ type: GGUFValueType.FLOAT32 });
        const tokens = md.get("tokenizer.ggml.tokens") as string[];
        expect(tokens.length).toBe(32000);
        expect(tokens.slice(0, 4)).toEqual(["<unk>", "<s>", "</s>", "<0x00>"]);
        expect(md.get("tokenizer.ggml.scores")).toBeInstanceOf(Float32Array);
        expect((md.get("tokenizer.ggml.scores") as Float32Array).length).toBe(32000);
        expect(md.get("tokenizer.ggml.token_type")).toBeInstanceOf(Int32Array);
        expect(md.get("tokenizer.ggml.bos_token_id")).toBe(1);
        expect(md.get("tokenizer.ggml.eos_token_id")).toBe(2);

        // 6 layers x 9 tensors + token_embd + output_norm; tied output (no output.weight).
        expect(m.tensors.length).toBe(56);
        expect(m.tensors.some((t) => t.name === "output.weight")).toBe(false);
        const embd = m.tensors.find((t) => t.name === "token_embd.weight")!;
        expect(embd.dims).toEqual([288, 32000]);
        expect(m.tensors.find((t) => t.name === "blk.5.ffn_down.weight")!.dims).toEqual([768, 288]);
        const counts: Record<string, number> = {};
        for (const t of m.tensors) counts[typeTraits(t.type).name] = (counts[typeTraits(t.type).name] ?? 0) + 1;
        expect(counts).toEqual(types);
        // Tensors are contiguous and the last one ends at the end of the file.
        const last = m.tensors.reduce((a, b) => (a.offset > b.offset ? a : b));
        expect(last.offset + last.nbytes).toBe(m.fileBytes);
      } finally {
        m.close();
      }
    });
  }

  test("tensor data is read lazily and correctly by offset", () => {
    const path = join(STORIES, "stories15M-f32.gguf");
    let furthest = 0;
    const inner = openFileSource(path);
    const counting: ByteSource = { ...inner, read: (o, n) => ((furthest = Math.max(furthest, o + n)), inner.read(o, n)), close: inner.close };
    const m = parseGGUF(counting);
    // 61 MB file; parsing reads the header (0.7 MB with a 32k vocabulary) and at most one small
    // read-ahead chunk past it, never the weights.
    expect(m.dataOffset).toBe(727072);
    expect(furthest).toBeLessThanOrEqual(m.dataOffset + (64 << 10));
    const t = m.tensors.find((x) => x.name === "blk.0.attn_norm.weight")!;
    const data = m.read(t.name);
    expect(data.byteLength).toBe(288 * 4);
    // Independent check: the same bytes at the same offset of the whole file.
    const whole = readFileSync(path);
    expect(Buffer.from(data).equals(whole.subarray(t.offset, t.offset + t.nbytes))).toBe(true);
    const w = new Float32Array(data.buffer, data.byteOffset, 288);
    expect(w.every(Number.isFinite)).toBe(true);
    expect(() => m.read("nope.weight")).toThrow(ModelFileError);
    m.close();
  });

  test("rewriting a file from what was read reproduces it byte for byte", () => {
    const path = join(STORIES, "stories15M-q4_0.gguf");
    const m = openGGUF(path);
    const out = join(tmp, "copy.gguf");
    writeGGUF(out, m.typedMetadata(), m.tensors.map((t) => ({ name: t.name, type: t.type, dims: t.dims, data: () => m.read(t.name) })));
    m.close();
    expect(Buffer.from(readFileSync(out)).equals(readFileSync(path))).toBe(true);
  });
});

describe("writer round trip", () => {
  test("every value type, arrays, defaults and tensors come back as written", () => {
    const f32 = new Float32Array([1.5, -2, 3.25, 0]);
    const q8 = new Uint8Array(34 * 2).map((_, i) => (i * 7) & 0xff);
    const path = join(tmp, "roundtrip.gguf");
    writeGGUF(path, new Map<string, any>([
      ["general.architecture", "llama"],
      ["general.alignment", gguf.u32(64)],
      ["t.u8", gguf.u8(200)], ["t.i8", gguf.i8(-100)], ["t.u16", gguf.u16(60000)], ["t.i16", gguf.i16(-30000)],
      ["t.u32", gguf.u32(4000000000)], ["t.i32", gguf.i32(-2000000000)], ["t.f32", gguf.f32(0.5)],
      ["t.f64", gguf.f64(Math.PI)], ["t.bool", true], ["t.u64", 2n ** 63n], ["t.i64", gguf.i64(-5n)],
      ["t.plain_int", 7], ["t.plain_neg", -7], ["t.plain_float", 0.25], ["llama.rope.freq_base", 10000],
      ["t.strings", ["a", "ünï", "🙂", ""]], ["t.ints", gguf.arrI32([1, -2, 3])], ["t.floats", f32],
      ["t.nested", [[1, 2], [3]]], ["t.empty", []], ["t.bools", [true, false]], ["t.mixed", [-1, 3000000000]],
      ["t.signed", [-1, 2]], ["t.fracs", [1, 0.5]],
      ["tokenizer.ggml.token_type", [1, 2, 3]],
    ]), [
      { name: "a", type: GGMLType.F32, dims: [4], data: new Uint8Array(f32.buffer) },
      { name: "b", type: GGMLType.Q8_0, dims: [32, 2], data: q8 },
    ]);
    const m = openGGUF(path);
    const md = m.metadata;
    const ty = (k: string) => m.metadataTypes.get(k);
    expect(m.alignment).toBe(64);
    expect(m.dataOffset % 64).toBe(0);
    expect([md.get("t.u8"), md.get("t.i8"), md.get("t.u16"), md.get("t.i16"), md.get("t.u32"), md.get("t.i32")])
      .toEqual([200, -100, 60000, -30000, 4000000000, -2000000000]);
    expect([md.get("t.f32"), md.get("t.f64"), md.get("t.bool"), md.get("t.u64"), md.get("t.i64")])
      .toEqual([0.5, Math.PI, true, 2n ** 63n, -5n]);
    expect([ty("t.plain_int"), ty("t.plain_neg"), ty("t.plain_float"), ty("llama.rope.freq_base")].map((t) => t!.type))
      .toEqual([GGUFValueType.UINT32, GGUFValueType.INT32, GGUFValueType.FLOAT32, GGUFValueType.FLOAT32]);
    expect(md.get("llama.rope.freq_base")).toBe(10000);
    expect(md.get("t.strings")).toEqual(["a", "ünï", "🙂", ""]);
    expect(Array.from(md.get("t.ints") as Int32Array)).toEqual([1, -2, 3]);
    expect(md.get("t.ints")).toBeInstanceOf(Int32Array);
    expect(Array.from(md.get("t.floats") as Float32Array)).toEqual([1.5, -2, 3.25, 0]);
    expect(md.get("t.nested")).toEqual([new Uint32Array([1, 2]), new Uint32Array([3])]);
    expect(Array.from(md.get("t.empty") as ArrayLike<number>)).toEqual([]);
    expect(md.get("t.bools")).toEqual([true, false]);
    expect(md.get("t.mixed")).toEqual([-1n, 3000000000n]);
    expect([ty("t.signed"), ty("t.fracs")]).toEqual([
      { type: GGUFValueType.ARRAY, itemType: GGUFValueType.INT32 }, { type: GGUFValueType.ARRAY, itemType: GGUFValueType.FLOAT32 },
    ]);
    expect(() => writeGGUF(join(tmp, "mixed.gguf"), { x: [1, "a"] }, [])).toThrow(/one kind, got number and string/);
    expect(ty("tokenizer.ggml.token_type")).toEqual({ type: GGUFValueType.ARRAY, itemType: GGUFValueType.INT32 });
    expect(Array.from(new Float32Array(m.read("a").buffer))).toEqual([1.5, -2, 3.25, 0]);
    expect(m.read("b")).toEqual(q8);
    expect(m.tensors.map((t) => [t.name, t.type, t.dims, (t.offset - m.dataOffset) % 64])).toEqual([
      ["a", GGMLType.F32, [4], 0], ["b", GGMLType.Q8_0, [32, 2], 0],
    ]);
    m.close();
  });

  test("writer rejects tensor data of the wrong size", () => {
    expect(() => writeGGUF(join(tmp, "bad.gguf"), {}, [{ name: "x", type: GGMLType.F32, dims: [8], data: new Uint8Array(4) }]))
      .toThrow(/needs 32 bytes, got 4/);
  });
});

describe("broken files give a ModelFileError naming the file and the problem", () => {
  // A small valid file to corrupt: a few metadata entries and two tensors.
  const base = join(tmp, "base.gguf");
  writeGGUF(base, { "general.architecture": "llama", "general.name": "x".repeat(100), "t.vals": [1, 2, 3, 4] }, [
    { name: "first", type: GGMLType.F32, dims: [8, 2], data: new Uint8Array(64) },
    { name: "second", type: GGMLType.F32, dims: [16], data: new Uint8Array(64) },
  ]);
  const good = new Uint8Array(readFileSync(base));
  const view = () => new DataView(good.buffer.slice(0));
  const indexOf = (s: string) => Buffer.from(good).indexOf(Buffer.from(s));

  const cases: [string, () => Uint8Array, RegExp][] = [
    ["wrong magic", () => { const b = good.slice(); b.set(new TextEncoder().encode("GGJT"), 0); return b; }, /wrong magic .*"GGJT"/],
    ["version 99", () => { const d = view(); d.setUint32(4, 99, true); return new Uint8Array(d.buffer); }, /unsupported GGUF version 99/],
    ["version 1", () => { const d = view(); d.setUint32(4, 1, true); return new Uint8Array(d.buffer); }, /unsupported GGUF version 1/],
    ["truncated header", () => good.slice(0, 10), /truncated file.*tensor count/],
    ["empty file", () => new Uint8Array(0), /truncated file/],
    ["truncated metadata", () => good.slice(0, indexOf("general.name") + 40), /truncated file.*general\.name/],
    ["truncated tensor infos", () => good.slice(0, indexOf("second") + 3), /truncated file/],
    ["tensor past end of file", () => good.slice(0, good.length - 40), /tensor "second".*past the end of the file/],
    ["unknown tensor type 99", () => {
      // name "first" (5 bytes), then u32 n_dims, 2 x u64 dims, then the u32 type.
      const d = view(); d.setUint32(indexOf("first") + 5 + 4 + 16, 99, true); return new Uint8Array(d.buffer);
    }, /tensor "first" has unknown tensor type 99/],
    ["absurd tensor count", () => { const d = view(); d.setBigUint64(8, 1n << 40n, true); return new Uint8Array(d.buffer); }, /absurd tensor count/],
    ["absurd metadata count", () => { const d = view(); d.setBigUint64(16, 1n << 62n, true); return new Uint8Array(d.buffer); }, /absurd .*metadata/],
    ["absurd array length", () => {
      const d = view(); d.setBigUint64(indexOf("t.vals") + 6 + 4 + 4, 1n << 50n, true); return new Uint8Array(d.buffer);
    }, /absurd array item \(t\.vals\) count/],
    ["unknown metadata value type", () => {
      const d = view(); d.setUint32(indexOf("general.name") + 12, 77, true); return new Uint8Array(d.buffer);
    }, /unknown metadata value type 77/],
    ["too many dimensions", () => {
      const d = view(); d.setUint32(indexOf("first") + 5, 9, true); return new Uint8Array(d.buffer);
    }, /9 dimensions/],
  ];
  for (const [name, make, problem] of cases) {
    test(name, () => {
      const path = join(tmp, `${name.replaceAll(" ", "-")}.gguf`);
      writeFileSync(path, make());
      let err: unknown;
      try {
        openGGUF(path).close();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ModelFileError);
      expect((err as Error).message).toContain(path);
      expect((err as Error).message).toMatch(problem);
    });
  }

  test("the uncorrupted base file opens, and so does its version 2 form", () => {
    const m = openGGUF(base);
    expect(m.tensors.map((t) => t.name)).toEqual(["first", "second"]);
    m.close();
    const v2 = join(tmp, "v2.gguf");
    const d = view();
    d.setUint32(4, 2, true);
    writeFileSync(v2, new Uint8Array(d.buffer));
    const m2 = openGGUF(v2);
    expect([m2.version, m2.tensors.length, m2.metadata.get("general.architecture")]).toEqual([2, 2, "llama"]);
    m2.close();
  });

  test("a missing file", () => {
    expect(() => openGGUF(join(tmp, "missing.gguf"))).toThrow(/missing\.gguf: cannot open/);
  });
});
