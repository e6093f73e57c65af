// Deterministic builders of tiny random-weight GGUF models that llama.cpp loads and runs.
//
// Parity tests rebuild these files from a seed, run them in our engine, and compare against
// llama.cpp's outputs recorded once by scripts/record-engine-fixtures.ts. The bytes must be
// identical on every rebuild (the fixture stores their sha256), so:
//  - the serializer here is self-contained rather than the product's GGUF writer: a change in
//    the product writer (key order, alignment) must not silently invalidate the fixtures, and
//    the reader under test should not be checked against bytes produced by its own sibling;
//  - random numbers use only integer arithmetic and + * on doubles (no Math.log/cos, whose last
//    bits are not specified across engines).
//
// Quantized weights are written as valid random blocks (random quant codes, small random f16
// scales) rather than by quantizing floats: llama.cpp only dequantizes them, so no quantizer
// is needed and the K-quant scale packing is exercised with independent sub-block values.

import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GGMLType, GGUFValueType } from "../../src/engine/model/types.ts";
import { dequantize as engineDequantize } from "../../src/engine/quant.ts";

// ---------------------------------------------------------------------------------------------
// Seeded random numbers

/** mulberry32: 32-bit state, integer-only, identical everywhere. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }
  /** Integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo + 1));
  }
  /** Approximately standard normal (Irwin-Hall of 4 uniforms, rescaled to unit variance). */
  normal(): number {
    const s = this.uniform() + this.uniform() + this.uniform() + this.uniform();
    return (s - 2) * 1.7320508075688772;
  }
}

// ---------------------------------------------------------------------------------------------
// Number encodings

const f32Scratch = new Float32Array(1);
const u32OfF32 = new Uint32Array(f32Scratch.buffer);

/** IEEE half bits of x, round to nearest even (x is assumed finite and within half range). */
export function f32ToF16Bits(x: number): number {
  f32Scratch[0] = x;
  const bits = u32OfF32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  let e = exp - 127 + 15;
  if (exp === 0) return sign; // f32 zero/denormal -> signed zero
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    // half subnormal
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  return sign | half;
}

/** Value of IEEE half bits. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** bfloat16 bits of x, round to nearest even. */
export function f32ToBF16Bits(x: number): number {
  f32Scratch[0] = x;
  const bits = u32OfF32[0];
  const lsb = (bits >>> 16) & 1;
  return ((bits + 0x7fff + lsb) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------------
// Weight data: a tensor of `rows` rows of `cols` elements with target standard deviation `std`

interface BlockFormat {
  /** Elements per block and bytes per block. */
  block: number;
  bytes: number;
  /** Writes one random block with values of roughly the given standard deviation. */
  write(rng: Rng, std: number, out: DataView, at: number): void;
}

const setF16 = (out: DataView, at: number, x: number) => out.setUint16(at, f32ToF16Bits(x), true);

/** Per-type writers; the scale constants are the standard deviations of the raw quant codes. */
const BLOCK_FORMATS: Partial<Record<GGMLType, BlockFormat>> = {
  [GGMLType.F32]: {
    block: 1, bytes: 4,
    write: (rng, std, out, at) => out.setFloat32(at, std * rng.normal(), true),
  },
  [GGMLType.F16]: {
    block: 1, bytes: 2,
    write: (rng, std, out, at) => out.setUint16(at, f32ToF16Bits(std * rng.normal()), true),
  },
  [GGMLType.BF16]: {
    block: 1, bytes: 2,
    write: (rng, std, out, at) => out.setUint16(at, f32ToBF16Bits(std * rng.normal()), true),
  },
  // Q8_0: f16 d, 32 x int8; value = d * q. Codes uniform in [-127, 127] have std ~73.
  [GGMLType.Q8_0]: {
    block: 32, bytes: 34,
    write: (rng, std, out, at) => {
      setF16(out, at, (std / 73) * (0.6 + 0.8 * rng.uniform()));
      for (let i = 0; i < 32; i++) out.setInt8(at + 2 + i, rng.int(-127, 127));
    },
  },
  // Q4_0: f16 d, 16 bytes of nibbles; value = d * (q - 8). (q - 8) has std ~4.6.
  [GGMLType.Q4_0]: {
    block: 32, bytes: 18,
    write: (rng, std, out, at) => {
      setF16(out, at, (std / 4.6) * (0.6 + 0.8 * rng.uniform()));
      for (let i = 0; i < 16; i++) out.setUint8(at + 2 + i, rng.int(0, 255));
    },
  },
  // Q4_K: f16 d, f16 dmin, 12 bytes of 6-bit (scale, min) pairs for 8 sub-blocks of 32, 128
  // bytes of nibbles; value = d * sc * q - dmin * m. Mins near 7.5 * d * sc / dmin keep each
  // sub-block roughly centred, but sc and m are drawn independently enough that swapping them
  // (or mis-unpacking the 6-bit packing) changes the values visibly.
  [GGMLType.Q4_K]: {
    block: 256, bytes: 144,
    write: (rng, std, out, at) => {
      const sc: number[] = [];
      const m: number[] = [];
      for (let j = 0; j < 8; j++) {
        sc.push(rng.int(24, 63));
        m.push(Math.min(63, Math.max(0, sc[j] + rng.int(-6, 6))));
      }
      const d = (std / (4.6 * 44)) * (0.7 + 0.6 * rng.uniform());
      setF16(out, at, d);
      setF16(out, at + 2, d * 7.5);
      packKScales(out, at + 4, sc, m);
      for (let i = 0; i < 128; i++) out.setUint8(at + 16 + i, rng.int(0, 255));
    },
  },
  // Q6_K: 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 int8 sub-block scales, f16 d;
  // value = d * scale * (q - 32), q 6-bit (std of q - 32 ~18.5).
  [GGMLType.Q6_K]: {
    block: 256, bytes: 210,
    write: (rng, std, out, at) => {
      for (let i = 0; i < 192; i++) out.setUint8(at + i, rng.int(0, 255));
      for (let i = 0; i < 16; i++) {
        const mag = rng.int(24, 100);
        out.setInt8(at + 192 + i, rng.uniform() < 0.5 ? -mag : mag);
      }
      setF16(out, at + 208, (std / (18.5 * 62)) * (0.7 + 0.6 * rng.uniform()));
    },
  },
};

/** Writes Q4_K / Q5_K's 12 bytes of 6-bit (scale, min) pairs for 8 sub-blocks at `at`. */
function packKScales(out: DataView, at: number, sc: number[], m: number[]) {
  for (let j = 0; j < 4; j++) {
    out.setUint8(at + j, (sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    out.setUint8(at + 4 + j, (m[j] & 63) | ((m[j + 4] >> 4) << 6));
    out.setUint8(at + 8 + j, (sc[j + 4] & 0xf) | ((m[j + 4] & 0xf) << 4));
  }
}

/** A block of random bytes with f16 fields set afterwards: [byte offset, value] pairs. */
function randomBlock(rng: Rng, out: DataView, at: number, bytes: number, halves: [number, number][]) {
  for (let i = 0; i < bytes; i++) out.setUint8(at + i, rng.int(0, 255));
  for (const [o, v] of halves) setF16(out, at + o, v);
}

/**
 * The formats of downloaded files beyond the first seven: random quant codes and scales, f16
 * fields at their ggml offsets, scales chosen from the codes' spread (nibbles ~4.6, five bits
 * ~9.2, IQ4 levels ~70, Q3_K's 6-bit scales ~18) so values have about the std asked for.
 */
Object.assign(BLOCK_FORMATS, {
  [GGMLType.Q4_1]: {
    block: 32, bytes: 20,
    write: (rng, std, out, at) => { const d = (std / 4.6) * (0.6 + 0.8 * rng.uniform()); randomBlock(rng, out, at, 20, [[0, d], [2, -7.5 * d]]); },
  },
  [GGMLType.Q5_0]: {
    block: 32, bytes: 22,
    write: (rng, std, out, at) => randomBlock(rng, out, at, 22, [[0, (std / 9.2) * (0.6 + 0.8 * rng.uniform())]]),
  },
  [GGMLType.Q5_1]: {
    block: 32, bytes: 24,
    write: (rng, std, out, at) => { const d = (std / 9.2) * (0.6 + 0.8 * rng.uniform()); randomBlock(rng, out, at, 24, [[0, d], [2, -15.5 * d]]); },
  },
  [GGMLType.IQ4_NL]: {
    block: 32, bytes: 18,
    write: (rng, std, out, at) => randomBlock(rng, out, at, 18, [[0, (std / 70) * (0.6 + 0.8 * rng.uniform())]]),
  },
  // Q2_K: scales[16] (4-bit scale 8..15 | 4-bit min 8..15 << 4), qs[64], d, dmin at 80 / 82.
  [GGMLType.Q2_K]: {
    block: 256, bytes: 84,
    write: (rng, std, out, at) => {
      const d = (std / (1.1 * 11.5)) * (0.7 + 0.6 * rng.uniform());
      randomBlock(rng, out, at, 84, [[80, d], [82, 1.5 * d]]);
      for (let i = 0; i < 16; i++) out.setUint8(at + i, rng.int(8, 15) | (rng.int(8, 15) << 4));
    },
  },
  // Q3_K: hmask[32], qs[64], 12 bytes of 6-bit scales (any), d at 108.
  [GGMLType.Q3_K]: {
    block: 256, bytes: 110,
    write: (rng, std, out, at) => randomBlock(rng, out, at, 110, [[108, (std / (2.3 * 18)) * (0.7 + 0.6 * rng.uniform())]]),
  },
  // Q5_K: d, dmin, Q4_K's scale packing, qh[32], qs[128].
  [GGMLType.Q5_K]: {
    block: 256, bytes: 176,
    write: (rng, std, out, at) => {
      const sc: number[] = [], m: number[] = [];
      for (let j = 0; j < 8; j++) {
        sc.push(rng.int(24, 63));
        m.push(Math.min(63, Math.max(0, sc[j] + rng.int(-6, 6))));
      }
      const d = (std / (9.2 * 44)) * (0.7 + 0.6 * rng.uniform());
      randomBlock(rng, out, at, 176, [[0, d], [2, d * 15.5]]);
      packKScales(out, at + 4, sc, m);
    },
  },
  // IQ4_XS: d, scales_h, scales_l[4], qs[128].
  [GGMLType.IQ4_XS]: {
    block: 256, bytes: 136,
    write: (rng, std, out, at) => randomBlock(rng, out, at, 136, [[0, (std / (70 * 18)) * (0.7 + 0.6 * rng.uniform())]]),
  },
} satisfies Partial<Record<GGMLType, BlockFormat>>);

/**
 * Reference dequantization of one block (the formulas of ggml's dequantize_row_*), written
 * independently of the engine: it produces the F32 "twin" of a quantized model, which llama.cpp
 * runs without its activation quantization, to check our quantized kernels tightly.
 */
const DEQUANTIZE: Partial<Record<GGMLType, (v: DataView, at: number, out: Float32Array, o: number) => void>> = {
  [GGMLType.F32]: (v, at, out, o) => { out[o] = v.getFloat32(at, true); },
  [GGMLType.F16]: (v, at, out, o) => { out[o] = f16BitsToF32(v.getUint16(at, true)); },
  [GGMLType.BF16]: (v, at, out, o) => {
    u32OfF32[0] = v.getUint16(at, true) << 16;
    out[o] = f32Scratch[0];
  },
  [GGMLType.Q8_0]: (v, at, out, o) => {
    const d = f16BitsToF32(v.getUint16(at, true));
    for (let i = 0; i < 32; i++) out[o + i] = d * v.getInt8(at + 2 + i);
  },
  [GGMLType.Q4_0]: (v, at, out, o) => {
    const d = f16BitsToF32(v.getUint16(at, true));
    for (let i = 0; i < 16; i++) {
      const b = v.getUint8(at + 2 + i);
      out[o + i] = d * ((b & 0xf) - 8);
      out[o + i + 16] = d * ((b >> 4) - 8);
    }
  },
  [GGMLType.Q4_K]: (v, at, out, o) => {
    const d = f16BitsToF32(v.getUint16(at, true));
    const dmin = f16BitsToF32(v.getUint16(at + 2, true));
    const q = (i: number) => v.getUint8(at + 4 + i);
    const scaleMin = (j: number): [number, number] => j < 4
      ? [q(j) & 63, q(j + 4) & 63]
      : [(q(j + 4) & 0xf) | ((q(j - 4) >> 6) << 4), (q(j + 4) >> 4) | ((q(j) >> 6) << 4)];
    for (let j = 0; j < 4; j++) {
      const [sc1, m1] = scaleMin(2 * j);
      const [sc2, m2] = scaleMin(2 * j + 1);
      for (let l = 0; l < 32; l++) {
        const b = v.getUint8(at + 16 + 32 * j + l);
        out[o + 64 * j + l] = d * sc1 * (b & 0xf) - dmin * m1;
        out[o + 64 * j + 32 + l] = d * sc2 * (b >> 4) - dmin * m2;
      }
    }
  },
  [GGMLType.Q6_K]: (v, at, out, o) => {
    const d = f16BitsToF32(v.getUint16(at + 208, true));
    for (let half = 0; half < 2; half++) {
      const ql = at + 64 * half;
      const qh = at + 128 + 32 * half;
      const sc = at + 192 + 8 * half;
      const y = o + 128 * half;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const lo = v.getUint8(ql + l), lo2 = v.getUint8(ql + l + 32), h = v.getUint8(qh + l);
        out[y + l] = d * v.getInt8(sc + is) * (((lo & 0xf) | ((h & 3) << 4)) - 32);
        out[y + l + 32] = d * v.getInt8(sc + is + 2) * (((lo2 & 0xf) | (((h >> 2) & 3) << 4)) - 32);
        out[y + l + 64] = d * v.getInt8(sc + is + 4) * (((lo >> 4) | (((h >> 4) & 3) << 4)) - 32);
        out[y + l + 96] = d * v.getInt8(sc + is + 6) * (((lo2 >> 4) | (((h >> 6) & 3) << 4)) - 32);
      }
    }
  },
};

/**
 * Formats whose twin values come from the engine's own dequantizers (src/engine/quant.ts),
 * checked there against llama-quantize's real files; the comparison of the quantized file
 * itself with llama.cpp stays independent.
 */
const ENGINE_DEQUANTIZED = new Set<GGMLType>([GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q5_K, GGMLType.IQ4_XS]);

/** Dequantizes a whole tensor's bytes to f32 values. */
export function dequantize(type: GGMLType, data: Uint8Array, nElements: number): Float32Array {
  if (ENGINE_DEQUANTIZED.has(type)) return engineDequantize(type, data, nElements);
  const fmt = BLOCK_FORMATS[type];
  const deq = DEQUANTIZE[type];
  if (!fmt || !deq) throw new Error(`random-gguf: no dequantizer for ggml type ${GGMLType[type] ?? type}`);
  const out = new Float32Array(nElements);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let b = 0; b * fmt.block < nElements; b++) deq(view, b * fmt.bytes, out, b * fmt.block);
  return out;
}

function randomTensorData(rng: Rng, type: GGMLType, cols: number, rows: number, std: number): Uint8Array {
  const fmt = BLOCK_FORMATS[type];
  if (!fmt) throw new Error(`random-gguf: no writer for ggml type ${GGMLType[type] ?? type}`);
  if (cols % fmt.block !== 0) {
    throw new Error(`random-gguf: row length ${cols} is not a multiple of the ${GGMLType[type]} block (${fmt.block})`);
  }
  const nBlocks = (cols / fmt.block) * rows;
  const bytes = new Uint8Array(nBlocks * fmt.bytes);
  const view = new DataView(bytes.buffer);
  for (let b = 0; b < nBlocks; b++) fmt.write(rng, std, view, b * fmt.bytes);
  return bytes;
}

function f32Data(values: ArrayLike<number>): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

// ---------------------------------------------------------------------------------------------
// GGUF v3 serializer (little-endian, 32-byte alignment)

type MetaEntry = { key: string; type: GGUFValueType; value: unknown; elemType?: GGUFValueType };
interface TensorEntry { name: string; type: GGMLType; dims: number[]; data: Uint8Array }

const meta = {
  u32: (key: string, value: number): MetaEntry => ({ key, type: GGUFValueType.UINT32, value }),
  i32: (key: string, value: number): MetaEntry => ({ key, type: GGUFValueType.INT32, value }),
  f32: (key: string, value: number): MetaEntry => ({ key, type: GGUFValueType.FLOAT32, value }),
  bool: (key: string, value: boolean): MetaEntry => ({ key, type: GGUFValueType.BOOL, value }),
  str: (key: string, value: string): MetaEntry => ({ key, type: GGUFValueType.STRING, value }),
  arr: (key: string, elemType: GGUFValueType, value: unknown[]): MetaEntry =>
    ({ key, type: GGUFValueType.ARRAY, elemType, value }),
};

const ALIGNMENT = 32;

class ByteSink {
  private chunks: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array) {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number) { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v, true); this.push(b); }
  i32(v: number) { const b = new Uint8Array(4); new DataView(b.buffer).setInt32(0, v, true); this.push(b); }
  u64(v: number) { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(v), true); this.push(b); }
  f32(v: number) { const b = new Uint8Array(4); new DataView(b.buffer).setFloat32(0, v, true); this.push(b); }
  str(s: string) { const b = new TextEncoder().encode(s); this.u64(b.length); this.push(b); }
  pad() { const n = (ALIGNMENT - (this.length % ALIGNMENT)) % ALIGNMENT; if (n) this.push(new Uint8Array(n)); }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) { out.set(c, at); at += c.length; }
    return out;
  }
}

function writeScalar(sink: ByteSink, type: GGUFValueType, v: unknown) {
  switch (type) {
    case GGUFValueType.UINT32: return sink.u32(v as number);
    case GGUFValueType.INT32: return sink.i32(v as number);
    case GGUFValueType.FLOAT32: return sink.f32(v as number);
    case GGUFValueType.BOOL: return sink.push(Uint8Array.of(v ? 1 : 0));
    case GGUFValueType.STRING: return sink.str(v as string);
    default: throw new Error(`random-gguf: unsupported metadata type ${type}`);
  }
}

export function serializeGGUF(metadata: MetaEntry[], tensors: TensorEntry[]): Uint8Array {
  const sink = new ByteSink();
  sink.push(new TextEncoder().encode("GGUF"));
  sink.u32(3);
  sink.u64(tensors.length);
  sink.u64(metadata.length);
  for (const m of metadata) {
    sink.str(m.key);
    sink.u32(m.type);
    if (m.type === GGUFValueType.ARRAY) {
      const values = m.value as unknown[];
      sink.u32(m.elemType!);
      sink.u64(values.length);
      for (const v of values) writeScalar(sink, m.elemType!, v);
    } else {
      writeScalar(sink, m.type, m.value);
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offsets.push(offset);
    offset += t.data.length;
    offset += (ALIGNMENT - (offset % ALIGNMENT)) % ALIGNMENT;
  }
  tensors.forEach((t, i) => {
    sink.str(t.name);
    sink.u32(t.dims.length);
    for (const d of t.dims) sink.u64(d);
    sink.u32(t.type);
    sink.u64(offsets[i]);
  });
  sink.pad();
  for (const t of tensors) {
    sink.push(t.data);
    sink.pad();
  }
  return sink.concat();
}

// ---------------------------------------------------------------------------------------------
// Tokenizer sections

/** Word pieces of the SentencePiece-style vocab (after <unk>, <s>, </s> and 256 byte tokens). */
const SPM_PIECES = [
  "▁the", "▁a", "▁and", "▁to", "▁was", "▁he", "▁she", "▁it", "▁in", "▁of", "▁said", "▁day",
  "▁one", "▁upon", "▁time", "▁once", "▁there", "▁little", "▁big", "▁girl", "▁boy", "▁dog",
  "▁cat", "▁play", "▁happy", "▁sun", "▁tree", "▁ball", "▁friend", "▁saw", "▁went", "▁had",
  "▁with", "▁they", "▁her", "▁his", "▁very", "▁park", "▁mom", "▁want", "ed", "ing", "er",
  "s", "ly", "▁", "e", "t", "a", "o", ".", ",", "!", "?", "▁Lily", "▁Tom", "▁red", "▁blue",
  "▁bird", "▁home", "▁fun",
];

function spmTokenizer(): MetaEntry[] {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [2, 3, 3]; // unknown, control, control
  const scores = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(6); // byte
    scores.push(0);
  }
  SPM_PIECES.forEach((p, i) => {
    tokens.push(p);
    types.push(1); // normal
    scores.push(-i);
  });
  return [
    meta.str("tokenizer.ggml.model", "llama"),
    meta.arr("tokenizer.ggml.tokens", GGUFValueType.STRING, tokens),
    meta.arr("tokenizer.ggml.scores", GGUFValueType.FLOAT32, scores),
    meta.arr("tokenizer.ggml.token_type", GGUFValueType.INT32, types),
    meta.u32("tokenizer.ggml.bos_token_id", 1),
    meta.u32("tokenizer.ggml.eos_token_id", 2),
    meta.u32("tokenizer.ggml.unknown_token_id", 0),
    meta.bool("tokenizer.ggml.add_bos_token", true),
    meta.bool("tokenizer.ggml.add_eos_token", false),
  ];
}

/** GPT-2 byte-to-unicode table: printable bytes map to themselves, the rest to U+0100 onwards. */
function byteLevelAlphabet(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(printable(b) ? b : 256 + extra++));
  return out;
}

/** Merges of the byte-level BPE vocab, in rank order; each result is also a token. */
const BPE_MERGES: [string, string][] = [
  ["Ġ", "t"], ["h", "e"], ["Ġ", "a"], ["i", "n"], ["Ġt", "he"], ["e", "r"], ["o", "n"], ["Ġ", "s"],
  ["e", "d"], ["in", "g"], ["Ġ", "w"], ["o", "u"], ["Ġ", "h"], ["a", "n"], ["Ġ", "b"], ["Ġ", "d"],
  ["a", "s"], ["Ġa", "nd"], ["n", "d"], ["Ġ", "o"], ["i", "t"], ["Ġ", "p"], ["Ġ", "l"], ["a", "y"],
  ["Ġw", "as"], ["Ġp", "l"], ["Ġpl", "ay"], ["Ġ", "c"], ["e", "n"], ["Ġ", "f"],
];
const BPE_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

function gpt2Tokenizer(): MetaEntry[] {
  const tokens = byteLevelAlphabet();
  const types = tokens.map(() => 1);
  for (const [a, b] of BPE_MERGES) {
    if (!tokens.includes(a + b)) {
      tokens.push(a + b);
      types.push(1);
    }
  }
  const firstSpecial = tokens.length;
  for (const s of BPE_SPECIALS) {
    tokens.push(s);
    types.push(3); // control
  }
  return [
    meta.str("tokenizer.ggml.model", "gpt2"),
    meta.str("tokenizer.ggml.pre", "qwen2"),
    meta.arr("tokenizer.ggml.tokens", GGUFValueType.STRING, tokens),
    meta.arr("tokenizer.ggml.token_type", GGUFValueType.INT32, types),
    meta.arr("tokenizer.ggml.merges", GGUFValueType.STRING, BPE_MERGES.map(([a, b]) => `${a} ${b}`)),
    meta.u32("tokenizer.ggml.eos_token_id", firstSpecial + 2),
    meta.u32("tokenizer.ggml.padding_token_id", firstSpecial),
    meta.u32("tokenizer.ggml.bos_token_id", firstSpecial),
    meta.bool("tokenizer.ggml.add_bos_token", false),
  ];
}

const TOKENIZERS = { llama: spmTokenizer, gpt2: gpt2Tokenizer };

/** Vocabulary size each tokenizer kind produces (token_embd rows must match). */
export function vocabSize(kind: keyof typeof TOKENIZERS): number {
  const tokens = TOKENIZERS[kind]().find((m) => m.key === "tokenizer.ggml.tokens")!.value as unknown[];
  return tokens.length;
}

// ---------------------------------------------------------------------------------------------
// Model specs

export type RandomArch = "llama" | "qwen2" | "qwen3" | "phi3" | "gemma2" | "gemma3" | "granite" | "smollm3";

export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalContext: number;
}

export interface RandomModelSpec {
  /** Fixture name: test/fixtures/engine/<name>.json. */
  name: string;
  arch: RandomArch;
  seed: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  /** Written as <arch>.attention.key_length / value_length when set (qwen3 style). */
  headDim?: number;
  nFf: number;
  nCtx: number;
  ropeBase: number;
  normEps: number;
  /** No output.weight: the output projection reuses token_embd. */
  tied: boolean;
  /** Type of the 2-D weights (token_embd, projections, output). Norms and biases stay F32. */
  weightType: GGMLType;
  /** Per-tensor type overrides by GGUF tensor-name suffix (e.g. "ffn_down.weight"), as real mixes do. */
  typeOverrides?: Record<string, GGMLType>;
  /** Llama-3 style frequency scaling, stored as a rope_freqs.weight tensor like llama.cpp does. */
  llama3Rope?: Llama3RopeScaling;
  /** Dimensions of a head RoPE rotates (written as rope.dimension_count; partial below headDim). */
  nRot?: number;
  /** Phi-3's LongRoPE: random long and short factor tensors, the trained context and attention factor. */
  longRope?: { originalContext: number; attnFactor: number };
  /** Sliding-window layers: the window and llama.cpp's layer pattern (every pattern-th layer global). */
  slidingWindow?: { window: number; pattern: number; localBase?: number };
  /** Gemma 2's soft-caps of attention scores and logits. */
  softcap?: { attn: number; final: number };
  /** Linear RoPE scaling of the global layers (rope.scaling.type linear). */
  linearRope?: number;
  /** Granite's four scales. */
  graniteScales?: { embedding: number; residual: number; attention: number; logit: number };
}

/** Tokenizer kind per architecture, as published models of each family use. */
const ARCH_TOKENIZER: Record<RandomArch, keyof typeof TOKENIZERS> = {
  llama: "llama", qwen2: "gpt2", qwen3: "gpt2", phi3: "llama", gemma2: "llama", gemma3: "llama", granite: "gpt2", smollm3: "gpt2",
};

/** The tokenizer kind a spec's file carries. */
export const tokenizerKind = (spec: RandomModelSpec): keyof typeof TOKENIZERS => ARCH_TOKENIZER[spec.arch];

interface ArchTraits {
  qkvBias: boolean;
  qkNorm: boolean;
  writeRopeDim: boolean;
  /** q, k, v in one attn_qkv tensor and gate, up in one ffn_up of 2 x n_ff rows (phi3). */
  fused?: boolean;
  /** post_attention_norm and post_ffw_norm after each sublayer (gemma). */
  postNorms?: boolean;
  /** Embeddings multiplied by sqrt(n_embd) (gemma). */
  embedSqrt?: boolean;
}

/** Architecture-specific tensors and keys, as data (see the layer loop in buildRandomGGUF). */
const ARCH_TRAITS: Record<RandomArch, ArchTraits> = {
  llama: { qkvBias: false, qkNorm: false, writeRopeDim: true },
  qwen2: { qkvBias: true, qkNorm: false, writeRopeDim: false },
  qwen3: { qkvBias: false, qkNorm: true, writeRopeDim: false },
  phi3: { qkvBias: false, qkNorm: false, writeRopeDim: true, fused: true },
  gemma2: { qkvBias: false, qkNorm: false, writeRopeDim: false, postNorms: true, embedSqrt: true },
  gemma3: { qkvBias: false, qkNorm: true, writeRopeDim: false, postNorms: true, embedSqrt: true },
  granite: { qkvBias: false, qkNorm: false, writeRopeDim: true },
  smollm3: { qkvBias: false, qkNorm: false, writeRopeDim: true },
};

const llamaBase = {
  arch: "llama" as const, nEmbd: 256, nLayer: 2, nHead: 8, nHeadKv: 4, nFf: 512, nCtx: 256,
  ropeBase: 10000, normEps: 1e-5, tied: false,
};
const qwen2Base = {
  arch: "qwen2" as const, nEmbd: 256, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 512, nCtx: 256,
  ropeBase: 1000000, normEps: 1e-6, tied: true,
};
const qwen3Base = {
  arch: "qwen3" as const, nEmbd: 256, nLayer: 2, nHead: 4, nHeadKv: 2, headDim: 128, nFf: 512, nCtx: 256,
  ropeBase: 1000000, normEps: 1e-6, tied: true,
};

const phi3Base = {
  arch: "phi3" as const, nEmbd: 256, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 512, nCtx: 256,
  ropeBase: 10000, normEps: 1e-5, tied: false,
};
const gemmaBase = {
  nEmbd: 256, nLayer: 2, nHead: 4, nHeadKv: 2, headDim: 48, nFf: 512, nCtx: 256,
  ropeBase: 10000, normEps: 1e-6, tied: true,
};

/**
 * llama-quantize's Q4_K_M types for a model whose n_embd is not a multiple of 256 (first match
 * wins): every matrix reading the n_embd-wide stream falls back from Q4_K to Q5_0 (and Q6_K to
 * Q8_0); ffn_down keeps its K-quants.
 */
function q4kmFallbacks(): Record<string, GGMLType> {
  return {
    "blk.0.attn_v.weight": GGMLType.Q8_0,
    "blk.0.ffn_down.weight": GGMLType.Q6_K,
    "ffn_down.weight": GGMLType.Q4_K,
    "token_embd.weight": GGMLType.Q8_0,
    ".weight": GGMLType.Q5_0,
  };
}

/** The models the parity fixtures cover. Changing one changes its sha256: re-record. */
export const RANDOM_MODELS: RandomModelSpec[] = [
  { ...llamaBase, name: "llama-f32", seed: 101, weightType: GGMLType.F32 },
  { ...llamaBase, name: "llama-f16", seed: 102, weightType: GGMLType.F16, tied: true },
  { ...llamaBase, name: "llama-bf16", seed: 103, weightType: GGMLType.BF16 },
  { ...llamaBase, name: "llama-q8_0", seed: 104, weightType: GGMLType.Q8_0 },
  { ...llamaBase, name: "llama-q4_0", seed: 105, weightType: GGMLType.Q4_0, typeOverrides: { "token_embd.weight": GGMLType.Q8_0 } },
  {
    ...llamaBase, name: "llama-q4_k", seed: 106, weightType: GGMLType.Q4_K,
    // Like a Q4_K_M file: the output and ffn_down in Q6_K.
    typeOverrides: { "output.weight": GGMLType.Q6_K, "ffn_down.weight": GGMLType.Q6_K },
  },
  { ...llamaBase, name: "llama-q6_k", seed: 107, weightType: GGMLType.Q6_K },
  {
    ...llamaBase, name: "llama3-rope-f32", seed: 108, weightType: GGMLType.F32, nHead: 4, nHeadKv: 2,
    ropeBase: 500000, llama3Rope: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 64 },
  },
  { ...qwen2Base, name: "qwen2-f32", seed: 201, weightType: GGMLType.F32 },
  { ...qwen2Base, name: "qwen2-q8_0", seed: 202, weightType: GGMLType.Q8_0, tied: false },
  { ...qwen3Base, name: "qwen3-f32", seed: 301, weightType: GGMLType.F32 },
  { ...qwen3Base, name: "qwen3-q8_0", seed: 303, weightType: GGMLType.Q8_0 },
  { ...qwen3Base, name: "qwen3-q4_k", seed: 302, weightType: GGMLType.Q4_K, typeOverrides: { "token_embd.weight": GGMLType.Q6_K } },
  {
    // the 32-element formats of downloaded files, mixed as llama-quantize's fallbacks mix them
    ...llamaBase, name: "llama-q5_0-mix", seed: 109, weightType: GGMLType.Q5_0,
    typeOverrides: {
      "token_embd.weight": GGMLType.Q8_0, "attn_k.weight": GGMLType.Q4_1, "attn_v.weight": GGMLType.Q5_1,
      "ffn_gate.weight": GGMLType.IQ4_NL, "ffn_up.weight": GGMLType.IQ4_NL,
    },
  },
  {
    // the K-quants beyond Q4_K / Q6_K
    ...llamaBase, name: "llama-q5_k-mix", seed: 110, weightType: GGMLType.Q5_K,
    typeOverrides: {
      "ffn_gate.weight": GGMLType.Q2_K, "ffn_up.weight": GGMLType.Q3_K, "attn_v.weight": GGMLType.IQ4_XS, "output.weight": GGMLType.Q6_K,
    },
  },
  // phi3 in Phi-4-mini's shape of rotation: fused qkv and gate|up, 48 of 64 dimensions rotated
  // (NeoX), LongRoPE past its 64-token trained context. (Not named "phi3": llama.cpp then expects
  // Phi-3's special tokens in the vocabulary.)
  { ...phi3Base, name: "phi4-mini-f32", seed: 401, weightType: GGMLType.F32, nRot: 48, longRope: { originalContext: 64, attnFactor: 1.19 } },
  { ...phi3Base, name: "phi4-mini-q8_0", seed: 402, weightType: GGMLType.Q8_0, nRot: 48, longRope: { originalContext: 64, attnFactor: 1.19 } },
  // Gemma 2: embeddings times sqrt(n_embd), GeGLU, post-norms, both soft-caps, a 6-token window
  // on even layers; its head size is not n_embd / n_head
  {
    ...gemmaBase, arch: "gemma2", name: "gemma2-f32", seed: 501, weightType: GGMLType.F32,
    slidingWindow: { window: 6, pattern: 2 }, softcap: { attn: 2.5, final: 12 },
  },
  {
    ...gemmaBase, arch: "gemma2", name: "gemma2-q8_0", seed: 502, weightType: GGMLType.Q8_0,
    slidingWindow: { window: 6, pattern: 2 }, softcap: { attn: 2.5, final: 12 },
  },
  // Gemma 3: q/k norms, local layers at their own RoPE base, linear scaling on the global one
  {
    ...gemmaBase, arch: "gemma3", name: "gemma3-f32", seed: 601, weightType: GGMLType.F32, ropeBase: 1000000,
    slidingWindow: { window: 6, pattern: 2, localBase: 10000 }, linearRope: 4,
  },
  {
    ...llamaBase, arch: "granite", name: "granite-f32", seed: 701, weightType: GGMLType.F32, tied: true,
    graniteScales: { embedding: 6, residual: 0.5, attention: 0.2, logit: 2 },
  },
  // Q4_K_M files of models whose rows are not a multiple of 256 (SmolLM2-135M: 576 wide;
  // Qwen2.5-0.5B: 896), at their real widths and three layers, typed as llama-quantize types
  // them: Q4_K and Q6_K where K allows (ffn_down: 1536 / 4864 wide inputs), their Q5_0 and Q8_0
  // fallbacks elsewhere, more bits (Q6_K / Q8_0) in the first layer's attn_v and ffn_down.
  {
    arch: "llama", name: "smollm2-135m-q4_k_m", seed: 901, nEmbd: 576, nLayer: 3, nHead: 9, nHeadKv: 3, nFf: 1536, nCtx: 256,
    ropeBase: 100000, normEps: 1e-5, tied: true, weightType: GGMLType.Q4_K, typeOverrides: q4kmFallbacks(),
  },
  {
    arch: "qwen2", name: "qwen2.5-0.5b-q4_k_m", seed: 902, nEmbd: 896, nLayer: 3, nHead: 14, nHeadKv: 2, nFf: 4864, nCtx: 256,
    ropeBase: 1000000, normEps: 1e-6, tied: true, weightType: GGMLType.Q4_K, typeOverrides: q4kmFallbacks(),
  },
  // SmolLM3: every fourth layer without RoPE
  { ...llamaBase, arch: "smollm3", name: "smollm3-f32", seed: 801, weightType: GGMLType.F32, nLayer: 4 },
];

export function findRandomModel(name: string): RandomModelSpec {
  const spec = RANDOM_MODELS.find((m) => m.name === name);
  if (!spec) throw new Error(`random-gguf: no model spec named "${name}"`);
  return spec;
}

/** Llama-3 frequency factors per rotary pair, computed as Meta's reference (and HF) do. */
export function llama3RopeFactors(s: Llama3RopeScaling, headDim: number, base: number): Float32Array {
  const lowWavelen = s.originalContext / s.lowFreqFactor;
  const highWavelen = s.originalContext / s.highFreqFactor;
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) {
    const freq = 1 / base ** ((2 * i) / headDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalContext / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

/** Scale of the projections that write into the residual stream (attn_output, ffn_down). */
const RESIDUAL_GAIN = 3;

/**
 * Builds the GGUF bytes of a spec. Pure function of the spec. With `f32Twin`, every weight is
 * written as the F32 dequantization of the same random data: the quantized model's exact
 * values, which llama.cpp runs without quantizing activations.
 */
export interface RandomGGUFOptions {
  f32Twin?: boolean;
  /** Written as tokenizer.chat_template (the parity fixtures' files have none). */
  chatTemplate?: string;
}

export function buildRandomGGUF(spec: RandomModelSpec, opts: RandomGGUFOptions = {}): Uint8Array {
  const rng = new Rng(spec.seed);
  const a = spec.arch;
  const traits = ARCH_TRAITS[a];
  const tokenizer = TOKENIZERS[ARCH_TOKENIZER[a]]();
  const nVocab = (tokenizer.find((m) => m.key === "tokenizer.ggml.tokens")!.value as unknown[]).length;
  const headDim = spec.headDim ?? spec.nEmbd / spec.nHead;
  const qDim = spec.nHead * headDim;
  const kvDim = spec.nHeadKv * headDim;

  const metadata: MetaEntry[] = [
    meta.str("general.architecture", a),
    meta.str("general.name", `random ${spec.name}`),
    meta.u32("general.alignment", ALIGNMENT),
    meta.u32(`${a}.context_length`, spec.nCtx),
    meta.u32(`${a}.embedding_length`, spec.nEmbd),
    meta.u32(`${a}.block_count`, spec.nLayer),
    meta.u32(`${a}.feed_forward_length`, spec.nFf),
    meta.u32(`${a}.attention.head_count`, spec.nHead),
    meta.u32(`${a}.attention.head_count_kv`, spec.nHeadKv),
    meta.f32(`${a}.attention.layer_norm_rms_epsilon`, spec.normEps),
    meta.f32(`${a}.rope.freq_base`, spec.ropeBase),
  ];
  if (spec.headDim !== undefined) {
    metadata.push(meta.u32(`${a}.attention.key_length`, headDim), meta.u32(`${a}.attention.value_length`, headDim));
  }
  if (traits.writeRopeDim || spec.nRot !== undefined) metadata.push(meta.u32(`${a}.rope.dimension_count`, spec.nRot ?? headDim));
  const nRot = spec.nRot ?? headDim;
  if (spec.longRope) {
    metadata.push(
      meta.str(`${a}.rope.scaling.type`, "longrope"),
      meta.u32(`${a}.rope.scaling.original_context_length`, spec.longRope.originalContext),
      meta.f32(`${a}.rope.scaling.attn_factor`, spec.longRope.attnFactor),
    );
  }
  if (spec.linearRope !== undefined) metadata.push(meta.str(`${a}.rope.scaling.type`, "linear"), meta.f32(`${a}.rope.scaling.factor`, spec.linearRope));
  if (spec.slidingWindow) {
    metadata.push(meta.u32(`${a}.attention.sliding_window`, spec.slidingWindow.window), meta.u32(`${a}.attention.sliding_window_pattern`, spec.slidingWindow.pattern));
    if (spec.slidingWindow.localBase !== undefined) metadata.push(meta.f32(`${a}.rope.freq_base_swa`, spec.slidingWindow.localBase));
  }
  if (spec.softcap) metadata.push(meta.f32(`${a}.attn_logit_softcapping`, spec.softcap.attn), meta.f32(`${a}.final_logit_softcapping`, spec.softcap.final));
  if (spec.graniteScales) {
    const g = spec.graniteScales;
    metadata.push(meta.f32(`${a}.embedding_scale`, g.embedding), meta.f32(`${a}.residual_scale`, g.residual), meta.f32(`${a}.attention.scale`, g.attention), meta.f32(`${a}.logit_scale`, g.logit));
  }
  metadata.push(meta.u32(`${a}.vocab_size`, nVocab), ...tokenizer);
  if (opts.chatTemplate !== undefined) metadata.push(meta.str("tokenizer.chat_template", opts.chatTemplate));

  const tensors: TensorEntry[] = [];
  const typeOf = (name: string) => {
    for (const [suffix, t] of Object.entries(spec.typeOverrides ?? {})) if (name.endsWith(suffix)) return t;
    return spec.weightType;
  };
  /** A [cols (in), rows (out)] matrix with std scaled to keep activations O(1). */
  const matrix = (name: string, cols: number, rows: number, std = 1 / Math.sqrt(cols)) => {
    const type = typeOf(name);
    tensors.push({ name, type, dims: [cols, rows], data: randomTensorData(rng, type, cols, rows, std) });
  };
  const vector = (name: string, n: number, center: number, spread: number) => {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = center + spread * rng.normal();
    tensors.push({ name, type: GGMLType.F32, dims: [n], data: f32Data(v) });
  };

  // A tied output projection scores each token by its embedding's dot product with the final
  // hidden state, which still contains the input token's own embedding: with embeddings as large
  // as the layer outputs every step would predict its input again. Small embeddings (std 0.1)
  // against residual outputs of rms ~3, with a larger final norm gain, keep logits of std ~4
  // that depend on the whole context.
  // Architectures that multiply the embeddings (gemma by sqrt(n_embd), granite by its scale) get
  // embeddings smaller by that factor, and a tied output a final norm larger by it, so their
  // residual stream and logits have the same scales as the others'.
  const embdGain = traits.embedSqrt ? Math.sqrt(spec.nEmbd) : spec.graniteScales?.embedding ?? 1;
  const embdStd = (spec.tied ? 0.1 : 1) / embdGain;
  matrix("token_embd.weight", spec.nEmbd, nVocab, embdStd);
  if (spec.llama3Rope) {
    tensors.push({
      name: "rope_freqs.weight", type: GGMLType.F32, dims: [headDim / 2],
      data: f32Data(llama3RopeFactors(spec.llama3Rope, headDim, spec.ropeBase)),
    });
  }
  if (spec.longRope) {
    // LongRoPE divisors per rotated pair: 1 for the fastest pairs, growing for the slow ones
    for (const [name, top] of [["rope_factors_long.weight", 6], ["rope_factors_short.weight", 1.5]] as const) {
      const v = Float32Array.from({ length: nRot / 2 }, (_, i) => 1 + (top - 1) * (i / (nRot / 2 - 1)) * (0.8 + 0.4 * rng.uniform()));
      tensors.push({ name, type: GGMLType.F32, dims: [nRot / 2], data: f32Data(v) });
    }
  }
  for (let l = 0; l < spec.nLayer; l++) {
    const p = `blk.${l}.`;
    vector(`${p}attn_norm.weight`, spec.nEmbd, 1, 0.2);
    if (traits.fused) {
      matrix(`${p}attn_qkv.weight`, spec.nEmbd, qDim + 2 * kvDim);
    } else {
      matrix(`${p}attn_q.weight`, spec.nEmbd, qDim);
      matrix(`${p}attn_k.weight`, spec.nEmbd, kvDim);
      matrix(`${p}attn_v.weight`, spec.nEmbd, kvDim);
    }
    // Biases stay small: large q/k biases make attention ignore content and the model loop on one token.
    if (traits.qkvBias) {
      vector(`${p}attn_q.bias`, qDim, 0, 0.1);
      vector(`${p}attn_k.bias`, kvDim, 0, 0.1);
      vector(`${p}attn_v.bias`, kvDim, 0, 0.1);
    }
    if (traits.qkNorm) {
      vector(`${p}attn_q_norm.weight`, headDim, 1, 0.2);
      vector(`${p}attn_k_norm.weight`, headDim, 1, 0.2);
    }
    matrix(`${p}attn_output.weight`, qDim, spec.nEmbd, RESIDUAL_GAIN / Math.sqrt(qDim));
    // a post-norm sets its sublayer's output rms to its gain: about the residual gain's scale
    if (traits.postNorms) vector(`${p}post_attention_norm.weight`, spec.nEmbd, RESIDUAL_GAIN / 2, 0.3);
    vector(`${p}ffn_norm.weight`, spec.nEmbd, 1, 0.2);
    if (traits.fused) {
      matrix(`${p}ffn_up.weight`, spec.nEmbd, 2 * spec.nFf);
    } else {
      matrix(`${p}ffn_gate.weight`, spec.nEmbd, spec.nFf);
      matrix(`${p}ffn_up.weight`, spec.nEmbd, spec.nFf);
    }
    matrix(`${p}ffn_down.weight`, spec.nFf, spec.nEmbd, RESIDUAL_GAIN / Math.sqrt(spec.nFf));
    if (traits.postNorms) vector(`${p}post_ffw_norm.weight`, spec.nEmbd, RESIDUAL_GAIN / 2, 0.3);
  }
  const outGain = spec.tied ? embdGain : 1;
  vector("output_norm.weight", spec.nEmbd, (spec.tied ? 2.5 : 1) * outGain, (spec.tied ? 0.5 : 0.2) * outGain);
  // A larger output scale gives logits of std ~4, so top-1 margins are rarely near-ties.
  if (!spec.tied) matrix("output.weight", spec.nEmbd, nVocab, 4 / Math.sqrt(spec.nEmbd));
  if (!opts.f32Twin) return serializeGGUF(metadata, tensors);
  const twin = tensors.map((t) => t.type === GGMLType.F32 ? t : {
    ...t, type: GGMLType.F32, data: f32Data(dequantize(t.type, t.data, t.dims.reduce((a, b) => a * b, 1))),
  });
  return serializeGGUF(metadata, twin);
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Writes the spec's GGUF (or its F32 twin) into dir (created if missing); returns its path and sha256. */
export function writeRandomGGUF(spec: RandomModelSpec, dir: string, opts: RandomGGUFOptions = {}): { path: string; sha256: string; bytes: number } {
  const bytes = buildRandomGGUF(spec, opts);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${spec.name}${opts.f32Twin ? "-f32twin" : ""}.gguf`);
  writeFileSync(path, bytes);
  return { path, sha256: sha256Hex(bytes), bytes: bytes.length };
}
