// Plain TypeScript reference for every weight format the kernels read: dequantizers that follow
// ggml's block layouts (ggml-common.h / ggml-quants.c) and random-block generators for tests.
// The WGSL kernels are checked against these, never against themselves.

import { GGMLType } from "./model/types.ts";

export interface BlockFormat {
  type: GGMLType;
  name: string;
  /** Elements per block. */
  blockElems: number;
  /** Bytes per block. */
  blockBytes: number;
}

/** The weight formats the engine runs, as data. */
export const WEIGHT_FORMATS: Record<string, BlockFormat> = {
  F32: { type: GGMLType.F32, name: "F32", blockElems: 1, blockBytes: 4 },
  F16: { type: GGMLType.F16, name: "F16", blockElems: 1, blockBytes: 2 },
  BF16: { type: GGMLType.BF16, name: "BF16", blockElems: 1, blockBytes: 2 },
  Q8_0: { type: GGMLType.Q8_0, name: "Q8_0", blockElems: 32, blockBytes: 34 },
  Q4_0: { type: GGMLType.Q4_0, name: "Q4_0", blockElems: 32, blockBytes: 18 },
  Q4_1: { type: GGMLType.Q4_1, name: "Q4_1", blockElems: 32, blockBytes: 20 },
  Q5_0: { type: GGMLType.Q5_0, name: "Q5_0", blockElems: 32, blockBytes: 22 },
  Q5_1: { type: GGMLType.Q5_1, name: "Q5_1", blockElems: 32, blockBytes: 24 },
  IQ4_NL: { type: GGMLType.IQ4_NL, name: "IQ4_NL", blockElems: 32, blockBytes: 18 },
  Q2_K: { type: GGMLType.Q2_K, name: "Q2_K", blockElems: 256, blockBytes: 84 },
  Q3_K: { type: GGMLType.Q3_K, name: "Q3_K", blockElems: 256, blockBytes: 110 },
  Q4_K: { type: GGMLType.Q4_K, name: "Q4_K", blockElems: 256, blockBytes: 144 },
  Q5_K: { type: GGMLType.Q5_K, name: "Q5_K", blockElems: 256, blockBytes: 176 },
  Q6_K: { type: GGMLType.Q6_K, name: "Q6_K", blockElems: 256, blockBytes: 210 },
  IQ4_XS: { type: GGMLType.IQ4_XS, name: "IQ4_XS", blockElems: 256, blockBytes: 136 },
};

/** IQ4_NL's and IQ4_XS's sixteen non-linear levels (ggml-common.h kvalues_iq4nl). */
export const IQ4_LEVELS = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113] as const;

export function formatOf(type: GGMLType): BlockFormat {
  const f = Object.values(WEIGHT_FORMATS).find((f) => f.type === type);
  if (!f) throw new Error(`weight type ${GGMLType[type] ?? type} is not supported by the engine (supported: ${Object.keys(WEIGHT_FORMATS).join(", ")})`);
  return f;
}

/** Bytes of one row of `k` elements. */
export function rowBytes(type: GGMLType, k: number): number {
  const f = formatOf(type);
  if (k % f.blockElems !== 0) throw new Error(`${f.name} row length ${k} is not a multiple of its block size ${f.blockElems}`);
  return (k / f.blockElems) * f.blockBytes;
}

// ---- half floats ----------------------------------------------------------------------------

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Round-to-nearest-even float -> IEEE half bits. */
export function floatToHalf(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0];
  const sign = (x >>> 16) & 0x8000;
  const e = (x >>> 23) & 0xff;
  let m = x & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  let he = e - 127 + 15;
  if (he >= 31) return sign | 0x7c00;
  if (he <= 0) {
    if (he < -10) return sign;
    m |= 0x800000;
    const shift = 14 - he;
    let hm = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && hm & 1)) hm++;
    return sign | hm;
  }
  let hm = m >>> 13;
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && hm & 1)) {
    hm++;
    if (hm === 0x400) { hm = 0; he++; if (he >= 31) return sign | 0x7c00; }
  }
  return sign | (he << 10) | hm;
}

export function bf16ToFloat(b: number): number {
  u32buf[0] = (b & 0xffff) << 16;
  return f32buf[0];
}

// ---- dequantizers ---------------------------------------------------------------------------

type Dequant = (src: Uint8Array, nElems: number) => Float32Array;

function view(src: Uint8Array): DataView {
  return new DataView(src.buffer, src.byteOffset, src.byteLength);
}

function dequantF32(src: Uint8Array, n: number): Float32Array {
  const dv = view(src);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
  return out;
}

function dequantF16(src: Uint8Array, n: number): Float32Array {
  const dv = view(src);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
  return out;
}

function dequantBF16(src: Uint8Array, n: number): Float32Array {
  const dv = view(src);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = bf16ToFloat(dv.getUint16(2 * i, true));
  return out;
}

// block_q8_0 { half d; int8 qs[32]; }
function dequantQ8_0(src: Uint8Array, n: number): Float32Array {
  const dv = view(src);
  const out = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const o = b * 34;
    const d = halfToFloat(dv.getUint16(o, true));
    for (let j = 0; j < 32; j++) out[b * 32 + j] = d * dv.getInt8(o + 2 + j);
  }
  return out;
}

// block_q4_0 { half d; uint8 qs[16]; }: element j is the low nibble of qs[j], j+16 the high one.
function dequantQ4_0(src: Uint8Array, n: number): Float32Array {
  const dv = view(src);
  const out = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const o = b * 18;
    const d = halfToFloat(dv.getUint16(o, true));
    for (let j = 0; j < 16; j++) {
      const q = src[o + 2 + j];
      out[b * 32 + j] = d * ((q & 15) - 8);
      out[b * 32 + j + 16] = d * ((q >> 4) - 8);
    }
  }
  return out;
}

/** Scale and min of sub-block j of a Q4_K block (6-bit values packed in 12 bytes). */
export function q4kScaleMin(scales: Uint8Array, j: number): [number, number] {
  if (j < 4) return [scales[j] & 63, scales[j + 4] & 63];
  return [(scales[j + 4] & 0xf) | ((scales[j - 4] >> 6) << 4), (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4)];
}

// block_q4_K { half d; half dmin; uint8 scales[12]; uint8 qs[128]; }: 8 sub-blocks of 32.
function dequantQ4_K(src: Uint8Array, n: number): Float32Array {
  const dv = view(src);
  const out = new Float32Array(n);
  for (let b = 0; b < n / 256; b++) {
    const o = b * 144;
    const d = halfToFloat(dv.getUint16(o, true));
    const dmin = halfToFloat(dv.getUint16(o + 2, true));
    const scales = src.subarray(o + 4, o + 16);
    for (let s = 0; s < 8; s++) {
      const [sc, m] = q4kScaleMin(scales, s);
      const qs = o + 16 + 32 * (s >> 1);
      const shift = (s & 1) * 4;
      for (let l = 0; l < 32; l++) out[b * 256 + s * 32 + l] = d * sc * ((src[qs + l] >> shift) & 15) - dmin * m;
    }
  }
  return out;
}

// block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d; }
function dequantQ6_K(src: Uint8Array, n: number): Float32Array {
  const dv = view(src);
  const out = new Float32Array(n);
  for (let b = 0; b < n / 256; b++) {
    const o = b * 210;
    const d = halfToFloat(dv.getUint16(o + 208, true));
    for (let h = 0; h < 2; h++) {
      const ql = o + 64 * h, qh = o + 128 + 32 * h, sc = o + 192 + 8 * h;
      const y = b * 256 + 128 * h;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const q1 = ((src[ql + l] & 0xf) | (((src[qh + l] >> 0) & 3) << 4)) - 32;
        const q2 = ((src[ql + l + 32] & 0xf) | (((src[qh + l] >> 2) & 3) << 4)) - 32;
        const q3 = ((src[ql + l] >> 4) | (((src[qh + l] >> 4) & 3) << 4)) - 32;
        const q4 = ((src[ql + l + 32] >> 4) | (((src[qh + l] >> 6) & 3) << 4)) - 32;
        out[y + l] = d * dv.getInt8(sc + is) * q1;
        out[y + l + 32] = d * dv.getInt8(sc + is + 2) * q2;
        out[y + l + 64] = d * dv.getInt8(sc + is + 4) * q3;
        out[y + l + 96] = d * dv.getInt8(sc + is + 6) * q4;
      }
    }
  }
  return out;
}

/** Bit j (0..31) of a 32-element block's high bits (Q5_0 / Q5_1 qh, little-endian), as 16 or 0. */
const highBit = (src: Uint8Array, o: number, j: number) => ((src[o + (j >> 3)] >> (j & 7)) & 1) << 4;

/**
 * The 32-element formats with nibble quants: element j of a block is the low nibble of qs[j],
 * j + 16 the high one, plus a fifth bit from qh where the format has one; value = d * q + m, or
 * d * level[q] (IQ4_NL). Byte offsets of d, m and qh (-1 where the format has none) and qs;
 * `bias` is added to q (Q5_0: -16); `levels` maps q where the format is non-linear.
 */
const NIBBLE_BLOCKS: Partial<Record<GGMLType, { d: number; m: number; qh: number; qs: number; bias: number; levels?: readonly number[] }>> = {
  [GGMLType.Q4_1]: { d: 0, m: 2, qh: -1, qs: 4, bias: 0 },
  [GGMLType.Q5_0]: { d: 0, m: -1, qh: 2, qs: 6, bias: -16 },
  [GGMLType.Q5_1]: { d: 0, m: 2, qh: 4, qs: 8, bias: 0 },
  [GGMLType.IQ4_NL]: { d: 0, m: -1, qh: -1, qs: 2, bias: 0, levels: IQ4_LEVELS },
};

/** The integer quant of element j (0..31) of a NIBBLE_BLOCKS block at byte o, as its kernels see it (bias applied, levels looked up). */
export function nibbleQuant(type: GGMLType, src: Uint8Array, o: number, j: number): number {
  const f = NIBBLE_BLOCKS[type]!;
  const b = src[o + f.qs + (j & 15)];
  let q = j < 16 ? b & 15 : b >> 4;
  if (f.qh >= 0) q |= highBit(src, o + f.qh, j);
  return f.levels ? f.levels[q] : q + f.bias;
}

function dequantNibbles(type: GGMLType): Dequant {
  const f = NIBBLE_BLOCKS[type]!;
  const bytes = formatOf(type).blockBytes;
  return (src, n) => {
    const dv = view(src);
    const out = new Float32Array(n);
    for (let b = 0; b < n / 32; b++) {
      const o = b * bytes;
      const d = halfToFloat(dv.getUint16(o + f.d, true));
      const m = f.m >= 0 ? halfToFloat(dv.getUint16(o + f.m, true)) : 0;
      for (let j = 0; j < 32; j++) out[b * 32 + j] = d * nibbleQuant(type, src, o, j) + m;
    }
    return out;
  };
}

// block_q2_K { uint8 scales[16]; uint8 qs[64]; half d; half dmin; }: 16 sub-blocks of 16, each
// with a 4-bit scale (low nibble) and min (high); 2-bit quants, qs byte l of half h holding
// elements 128h + 32s + l (s = its bit pair) for l < 32.
function dequantQ2_K(src: Uint8Array, n: number): Float32Array {
  const dv = view(src);
  const out = new Float32Array(n);
  for (let b = 0; b < n / 256; b++) {
    const o = b * 84;
    const d = halfToFloat(dv.getUint16(o + 80, true));
    const dmin = halfToFloat(dv.getUint16(o + 82, true));
    for (let e = 0; e < 256; e++) {
      const h = e >> 7, s = (e >> 5) & 3, l = e & 31;
      const sc = src[o + (e >> 4)];
      const q = (src[o + 16 + 32 * h + l] >> (2 * s)) & 3;
      out[b * 256 + e] = d * (sc & 15) * q - dmin * (sc >> 4);
    }
  }
  return out;
}

/** The sixteen 6-bit scales of a Q3_K block (12 bytes at o), minus 32. */
export function q3kScales(src: Uint8Array, o: number): number[] {
  const sc: number[] = [];
  for (let j = 0; j < 16; j++) {
    const low = j < 8 ? src[o + j] & 15 : src[o + j - 8] >> 4;
    const high = (src[o + 8 + (j & 3)] >> (2 * (j >> 2))) & 3;
    sc.push((low | (high << 4)) - 32);
  }
  return sc;
}

// block_q3_K { uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; half d; }: 16 sub-blocks of 16
// with signed 6-bit scales; a quant is 2 bits of qs (as Q2_K) minus 4 where its hmask bit
// (bit 4h + s of hmask[l]) is clear.
function dequantQ3_K(src: Uint8Array, n: number): Float32Array {
  const dv = view(src);
  const out = new Float32Array(n);
  for (let b = 0; b < n / 256; b++) {
    const o = b * 110;
    const d = halfToFloat(dv.getUint16(o + 108, true));
    const sc = q3kScales(src, o + 96);
    for (let e = 0; e < 256; e++) {
      const h = e >> 7, s = (e >> 5) & 3, l = e & 31;
      const q = ((src[o + 32 + 32 * h + l] >> (2 * s)) & 3) - ((src[o + l] >> (4 * h + s)) & 1 ? 0 : 4);
      out[b * 256 + e] = d * sc[e >> 4] * q;
    }
  }
  return out;
}

// block_q5_K { half d; half dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]; }: Q4_K's
// layout and 6-bit scales and mins, plus a fifth bit: bit s of qh[l] for element 32s + l.
function dequantQ5_K(src: Uint8Array, n: number): Float32Array {
  const dv = view(src);
  const out = new Float32Array(n);
  for (let b = 0; b < n / 256; b++) {
    const o = b * 176;
    const d = halfToFloat(dv.getUint16(o, true));
    const dmin = halfToFloat(dv.getUint16(o + 2, true));
    const scales = src.subarray(o + 4, o + 16);
    for (let s = 0; s < 8; s++) {
      const [sc, m] = q4kScaleMin(scales, s);
      const qs = o + 48 + 32 * (s >> 1);
      const shift = (s & 1) * 4;
      for (let l = 0; l < 32; l++) {
        const q = ((src[qs + l] >> shift) & 15) | (((src[o + 16 + l] >> s) & 1) << 4);
        out[b * 256 + s * 32 + l] = d * sc * q - dmin * m;
      }
    }
  }
  return out;
}

// block_iq4_xs { half d; uint16 scales_h; uint8 scales_l[4]; uint8 qs[128]; }: 8 sub-blocks of
// 32 with 6-bit scales (4 low bits in scales_l, 2 high in scales_h) minus 32, IQ4_NL's levels.
function dequantIQ4_XS(src: Uint8Array, n: number): Float32Array {
  const dv = view(src);
  const out = new Float32Array(n);
  for (let b = 0; b < n / 256; b++) {
    const o = b * 136;
    const d = halfToFloat(dv.getUint16(o, true));
    const sh = dv.getUint16(o + 2, true);
    for (let s = 0; s < 8; s++) {
      const ls = ((src[o + 4 + (s >> 1)] >> (4 * (s & 1))) & 15) | (((sh >> (2 * s)) & 3) << 4);
      const dl = d * (ls - 32);
      for (let l = 0; l < 16; l++) {
        const q = src[o + 8 + 16 * s + l];
        out[b * 256 + 32 * s + l] = dl * IQ4_LEVELS[q & 15];
        out[b * 256 + 32 * s + l + 16] = dl * IQ4_LEVELS[q >> 4];
      }
    }
  }
  return out;
}

const DEQUANT: Partial<Record<GGMLType, Dequant>> = {
  [GGMLType.F32]: dequantF32,
  [GGMLType.F16]: dequantF16,
  [GGMLType.BF16]: dequantBF16,
  [GGMLType.Q8_0]: dequantQ8_0,
  [GGMLType.Q4_0]: dequantQ4_0,
  [GGMLType.Q4_1]: dequantNibbles(GGMLType.Q4_1),
  [GGMLType.Q5_0]: dequantNibbles(GGMLType.Q5_0),
  [GGMLType.Q5_1]: dequantNibbles(GGMLType.Q5_1),
  [GGMLType.IQ4_NL]: dequantNibbles(GGMLType.IQ4_NL),
  [GGMLType.Q2_K]: dequantQ2_K,
  [GGMLType.Q3_K]: dequantQ3_K,
  [GGMLType.Q4_K]: dequantQ4_K,
  [GGMLType.Q5_K]: dequantQ5_K,
  [GGMLType.Q6_K]: dequantQ6_K,
  [GGMLType.IQ4_XS]: dequantIQ4_XS,
};

/** Dequantizes `nElems` elements stored in `type`'s GGUF layout. */
export function dequantize(type: GGMLType, src: Uint8Array, nElems: number): Float32Array {
  const fn = DEQUANT[type];
  if (!fn) throw new Error(`no dequantizer for ggml type ${GGMLType[type] ?? type}`);
  return fn(src, nElems);
}

/** Dequantizes a [rows, k] matrix row by row (rows are independent byte ranges). */
export function dequantizeRows(type: GGMLType, src: Uint8Array, rows: number, k: number): Float32Array {
  const rb = type === GGMLType.F32 ? 4 * k : type === GGMLType.F16 || type === GGMLType.BF16 ? 2 * k : rowBytes(type, k);
  const out = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) out.set(dequantize(type, src.subarray(r * rb, (r + 1) * rb), k), r * k);
  return out;
}

// ---- random data for tests ------------------------------------------------------------------

/** Small deterministic PRNG (mulberry32) so tests and fixtures are reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Bytes of a float row stored as `type` (F32, F16 or BF16); odd lengths allowed. */
export function encodeFloats(type: GGMLType, values: ArrayLike<number>): Uint8Array {
  const n = values.length;
  if (type === GGMLType.F32) return new Uint8Array(Float32Array.from(values).buffer);
  const out = new Uint8Array(2 * n);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    if (type === GGMLType.F16) dv.setUint16(2 * i, floatToHalf(values[i]), true);
    else { f32buf[0] = values[i]; dv.setUint16(2 * i, u32buf[0] >>> 16, true); }
  }
  return out;
}

/**
 * Random weights of a [rows, k] matrix in `type`'s layout: random quants with scales in a sane
 * range (so values are finite and of order `scale`).
 */
export function randomWeights(type: GGMLType, rows: number, k: number, rand: () => number, scale = 0.1): Uint8Array {
  const f = formatOf(type);
  if (f.blockElems === 1) {
    const vals = new Float32Array(rows * k);
    for (let i = 0; i < vals.length; i++) vals[i] = (rand() * 2 - 1) * scale;
    return encodeFloats(type, vals);
  }
  const nBlocks = rows * (k / f.blockElems);
  const out = new Uint8Array(nBlocks * f.blockBytes);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rand() * 256);
  const dv = new DataView(out.buffer);
  const half = (v: number) => floatToHalf(v);
  for (let b = 0; b < nBlocks; b++) {
    const o = b * f.blockBytes;
    switch (type) {
      case GGMLType.Q8_0: dv.setUint16(o, half((scale / 127) * (0.5 + rand())), true); break;
      case GGMLType.Q4_0: dv.setUint16(o, half((scale / 8) * (0.5 + rand())), true); break;
      case GGMLType.Q4_K:
        dv.setUint16(o, half((scale / 15 / 63) * (0.5 + rand())), true);
        dv.setUint16(o + 2, half((scale / 63) * 0.5 * rand()), true);
        break;
      case GGMLType.Q6_K: dv.setUint16(o + 208, half((scale / 32 / 127) * (0.5 + rand())), true); break;
      case GGMLType.Q4_1: case GGMLType.Q5_1:
        dv.setUint16(o, half((scale / 16) * (0.5 + rand())), true);
        dv.setUint16(o + 2, half(-scale * (0.5 + rand())), true);
        break;
      case GGMLType.Q5_0: dv.setUint16(o, half((scale / 16) * (0.5 + rand())), true); break;
      case GGMLType.IQ4_NL: dv.setUint16(o, half((scale / 127) * (0.5 + rand())), true); break;
      case GGMLType.Q2_K:
        dv.setUint16(o + 80, half((scale / 3 / 15) * (0.5 + rand())), true);
        dv.setUint16(o + 82, half((scale / 15) * 0.5 * rand()), true);
        break;
      case GGMLType.Q3_K: dv.setUint16(o + 108, half((scale / 4 / 32) * (0.5 + rand())), true); break;
      case GGMLType.Q5_K:
        dv.setUint16(o, half((scale / 31 / 63) * (0.5 + rand())), true);
        dv.setUint16(o + 2, half((scale / 63) * 0.5 * rand()), true);
        break;
      case GGMLType.IQ4_XS: dv.setUint16(o, half((scale / 127 / 32) * (0.5 + rand())), true); break;
    }
  }
  return out;
}

// ---- GPU row layout -------------------------------------------------------------------------

/**
 * Formats whose blocks the engine regroups at upload so every row is quad aligned: a row's
 * blocks become planes, one per field of the block in the order listed ([byte offset in the
 * block, bytes]): first the quants (Q8_0: 32 int8 bytes a block; the nibble formats 16 bytes,
 * element j in the low nibble of byte j and j + 16 in the high one, as stored), then the Q5
 * formats' fifth bits (4 bytes a block), then the scale (and min) halves, the row padded to 16
 * bytes. The values and scales are the stored ones; only where the bytes sit changes (the GGUF's
 * 18- to 34-byte blocks straddle words, which cost the kernels funnel shifts). Like llama.cpp's
 * CPU backend repacking Q4_0 for its own kernels. shaders/weights/*.wgsl address the planes.
 */
const ROW_PLANES: Partial<Record<GGMLType, readonly (readonly [number, number])[]>> = {
  [GGMLType.Q8_0]: [[2, 32], [0, 2]],
  [GGMLType.Q4_0]: [[2, 16], [0, 2]],
  [GGMLType.IQ4_NL]: [[2, 16], [0, 2]],
  [GGMLType.Q4_1]: [[4, 16], [0, 4]],
  [GGMLType.Q5_0]: [[6, 16], [2, 4], [0, 2]],
  [GGMLType.Q5_1]: [[8, 16], [4, 4], [0, 4]],
};

/**
 * Rows interleaved in groups of this many (shaders/bytes.wgsl `row_base`), `rowUnit` words at a
 * time: unit u of row r sits at (r / G) * G * rowWords + u * G * U + (r % G) * U. A SIMD group
 * of lavapipe runs 8 consecutive rows, one per lane: interleaved, its 8 loads of one unit fall
 * in one or two cache lines instead of 8 (stories15M's output head 0.76-0.84x the time, same sums).
 */
export function rowGroup(_type: GGMLType): number {
  return 8;
}

/**
 * Formats whose rows the kernels read in whole quads (16 bytes): the regrouped ones, the floats,
 * and Q4_K and Q5_K (their 144- and 176-byte blocks are nine and eleven quads).
 */
const QUAD_ROWS = new Set<GGMLType>([
  ...(Object.keys(ROW_PLANES).map(Number) as GGMLType[]), GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q4_K, GGMLType.Q5_K,
]);

/**
 * Words each row contributes to a group's interleave at a time (bytes.wgsl ROW_UNIT): 4 for the
 * formats the kernels read a quad (16 bytes) per load (QUAD_ROWS): lavapipe tests a lane's
 * execution bit once per load rather than once per word, and the output head of stories15M q8_0
 * ran in 0.85x the time; 1 for the K-quants whose blocks keep their GGUF layout off quad
 * boundaries (Q2_K's 84 bytes, Q3_K's 110, Q6_K's 210, IQ4_XS's 136), read a word at a time.
 */
export function rowUnit(type: GGMLType): 1 | 4 {
  return QUAD_ROWS.has(type) ? 4 : 1;
}

/** Bytes of one row of `k` elements as the GPU kernels read it: whole `rowUnit`s (rows are `rowGroup` interleaved). */
export function gpuRowBytes(type: GGMLType, k: number): number {
  if (!ROW_PLANES[type]) return Math.ceil(rowBytes(type, k) / (4 * rowUnit(type))) * 4 * rowUnit(type);
  return Math.ceil(rowBytes(type, k) / 16) * 16;
}

/**
 * `rows` rows of `k` elements in their GGUF layout, in the layout the GPU kernels read: Q8_0 and
 * Q4_0 regrouped into planes, every row padded to whole units, rows interleaved in groups of
 * `rowGroup` a `rowUnit` at a time, the last group padded with zero rows.
 */
export function toGpuRows(type: GGMLType, src: Uint8Array, rows: number, k: number): Uint8Array {
  const planes = ROW_PLANES[type];
  const f = formatOf(type);
  const stored = rowBytes(type, k);
  const nb = stored / f.blockBytes;
  const rb = gpuRowBytes(type, k);
  if (src.byteLength !== rows * stored) throw new Error(`${f.name}: ${src.byteLength} bytes is not ${rows} rows of ${k}`);
  const row = new Uint8Array(rb);  // its padding stays zero
  const G = rowGroup(type);
  const U = rowUnit(type);
  const words = rb / 4;
  const out = new Uint32Array(Math.ceil(rows / G) * G * words);
  const rowWords = new Uint32Array(row.buffer);
  for (let r = 0; r < rows; r++) {
    if (!planes) row.set(src.subarray(r * stored, (r + 1) * stored));
    else {
      let plane = 0;
      for (const [at, bytes] of planes) {
        for (let b = 0; b < nb; b++) {
          const s = (r * nb + b) * f.blockBytes + at;
          row.set(src.subarray(s, s + bytes), plane + b * bytes);
        }
        plane += nb * bytes;
      }
    }
    const base = Math.floor(r / G) * G * words + (r % G) * U;
    for (let j = 0; j < words; j++) out[base + Math.floor(j / U) * G * U + (j % U)] = rowWords[j];
  }
  return new Uint8Array(out.buffer);
}
