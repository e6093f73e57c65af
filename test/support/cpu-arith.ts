// Bit-exact TypeScript references for the arithmetic llama.cpp's CPU backend does in single
// precision: a fused multiply-add, binary16 rounding, and glibc's expf algorithm (the C library
// is the reference where it can be loaded; this port stands in for it elsewhere).
import { floatToHalf, formatOf, halfToFloat, nibbleQuant } from "../../src/engine/quant.ts";
import { GGMLType } from "../../src/engine/model/types.ts";

const f32 = Math.fround;

const f32buf = new Float32Array(1);
const u32buf = new Int32Array(f32buf.buffer);
/** The f32 next to x (x itself an f32) in the direction of `toward`. */
function nextF32(x: number, toward: number): number {
  if (x === 0) return toward > 0 ? 2 ** -149 : -(2 ** -149);
  f32buf[0] = x;
  u32buf[0] += (toward > x) === (x > 0) ? 1 : -1;
  return f32buf[0];
}

/** a * b + c with one rounding (the product of two f32 is exact in a double). */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const bb = s - p;
  const err = (p - (s - bb)) + (c - bb); // p + c = s + err exactly
  const r = f32(s);
  if (err === 0 || r === s) return r;
  // s + err rounds like s, unless s lies exactly halfway between two f32: then err decides
  const other = nextF32(r, s);
  if ((r + other) / 2 !== s) return r;
  return (err > 0) === (other > r) ? other : r;
}

export const roundF16 = (x: number) => halfToFloat(floatToHalf(x));

/** glibc's expf (EXP2F_TABLE_BITS = 5), evaluated in doubles exactly as the C code does. */
const N = 32;
const view = new DataView(new ArrayBuffer(8));
const bits = (d: number) => { view.setFloat64(0, d); return view.getBigUint64(0); };
const fromBits = (u: bigint) => { view.setBigUint64(0, BigInt.asUintN(64, u)); return view.getFloat64(0); };
const TABLE = Array.from({ length: N }, (_, i) => bits(Math.pow(2, i / N)) - ((BigInt(i) << 52n) / BigInt(N)));
const SHIFT = 6755399441055744; // 0x1.8p52
const C = [0.05550361559341535 / N ** 3, 0.2402284522445722 / N ** 2, 0.6931471806916203 / N];
export function expfGlibc(x: number): number {
  x = f32(x);
  if (x < -103.97208404541015625) return 0;
  if (x > 88.72283172607421875) return Infinity;
  const z = 1.4426950408889634 * N * x;
  let kd = z + SHIFT;
  const ki = bits(kd);
  kd -= SHIFT;
  const r = z - kd;
  const s = fromBits(TABLE[Number(ki % BigInt(N))] + (ki << 47n));
  const y = ((C[0] * r + C[1]) * (r * r) + (C[2] * r + 1)) * s;
  return f32(y);
}

// ---- llama.cpp's CPU kernels, step by step (x86 AVX2 / AVX-512 builds) ----------------------

const rne = (x: number) => {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/** Quantized activations: int8 quants, f16 scales (as f32) and quantize_row_q8_1's sums. */
export interface Q8Row { qs: Int8Array; d: Float32Array; s: Float32Array }

/**
 * quantize_row_q8_0: per block of 32, d = amax/127 stored as f16, q = rne(x * (127/amax));
 * quantize_row_q8_1 has the same quants and d, and s = f16(d * sum of the quants) with d unrounded.
 */
export function quantizeRowQ8(x: ArrayLike<number>): Q8Row {
  const nb = x.length / 32;
  const qs = new Int8Array(x.length), d = new Float32Array(nb), s = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    const dFull = f32(amax / 127);
    d[b] = roundF16(dFull);
    const id = amax !== 0 ? f32(127 / amax) : 0;
    let sum = 0;
    for (let j = 0; j < 32; j++) sum += qs[b * 32 + j] = rne(f32(x[b * 32 + j] * id));
    s[b] = roundF16(f32(dFull * sum));
  }
  return { qs, d, s };
}

/** Weight rows as llama.cpp's integer-dot kernels see them: signed quants, f32 scales, and mins where the format has them. */
export interface BlockRows { qs: Int8Array; d: Float32Array; m?: Float32Array }

/** Quants, scales (and mins) of GGUF Q8_0 / Q4_0 / Q4_1 / Q5_0 / Q5_1 / IQ4_NL rows. */
export function blockQuants(type: GGMLType, bytes: Uint8Array, rows: number, k: number): BlockRows {
  const nb = k / 32, bs = formatOf(type).blockBytes;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const qs = new Int8Array(rows * k), d = new Float32Array(rows * nb);
  const hasMin = type === GGMLType.Q4_1 || type === GGMLType.Q5_1;
  const m = hasMin ? new Float32Array(rows * nb) : undefined;
  for (let blk = 0; blk < rows * nb; blk++) {
    const o = blk * bs;
    d[blk] = halfToFloat(dv.getUint16(o, true));
    if (m) m[blk] = halfToFloat(dv.getUint16(o + 2, true));
    for (let j = 0; j < 32; j++) {
      qs[blk * 32 + j] = type === GGMLType.Q8_0 ? dv.getInt8(o + 2 + j)
        : type === GGMLType.Q4_0 ? (j < 16 ? bytes[o + 2 + j] & 15 : bytes[o + 2 + j - 16] >> 4) - 8
        : nibbleQuant(type, bytes, o, j);
    }
  }
  return { qs, d, m };
}

const hsum8 = (l: number[]) => f32(f32(f32(l[0] + l[4]) + f32(l[2] + l[6])) + f32(f32(l[1] + l[5]) + f32(l[3] + l[7])));

/**
 * One row of a Q8_0-activation product. order 0: ggml_vec_dot_q8_0_q8_0 / tinyBLAS (eight
 * lanes of 4-product sums, fused multiply-adds block after block, then the lanes summed);
 * order 1: the repacked Q4_0 / IQ4_NL kernels (one fused multiply-add of each block's integer
 * dot). Rows with mins (Q4_1, Q5_1 on Q8_1 activations) add sum(m * s), one fma a block.
 */
export function dotQ8Row(order: 0 | 1, w: BlockRows, row: number, x: Q8Row): number {
  const k = x.qs.length, nb = k / 32;
  const lanes = [0, 0, 0, 0, 0, 0, 0, 0];
  let acc = 0, mins = 0;
  for (let b = 0; b < nb; b++) {
    const d = f32(w.d[row * nb + b] * x.d[b]);
    let isum = 0;
    for (let j = 0; j < 8; j++) {
      let s = 0;
      for (let e = 0; e < 4; e++) s += w.qs[row * k + b * 32 + 4 * j + e] * x.qs[b * 32 + 4 * j + e];
      lanes[j] = fmaF32(d, s, lanes[j]);
      isum += s;
    }
    acc = fmaF32(isum, d, acc);
    if (w.m) mins = fmaF32(w.m[row * nb + b], x.s[b], mins);
  }
  const dot = order === 0 ? hsum8(lanes) : acc;
  return w.m ? f32(dot + mins) : dot;
}

/** ggml_v_expf / ggml_v_silu of an AVX-512 build. */
export function siluGgml(x: number): number {
  const xm = f32(-x);
  const z = fmaF32(xm, 1.4426950216293335, 12582912);
  const n = f32(z - 12582912);
  const b = fmaF32(-n, 1.428606765330187e-6, fmaF32(-n, 0.693145751953125, xm));
  const u = f32(b * b);
  const j = fmaF32(fmaF32(fmaF32(0.008247390389442444, b, 0.04189976677298546), u, fmaF32(0.16668395698070526, b, 0.4999912679195404)), u, fmaF32(0.9999994039535522, b, 1));
  const e = Math.abs(n) > 192 ? (n > 0 ? Infinity : 0) : f32(j * 2 ** n);
  return f32(x / f32(1 + e));
}

/**
 * One query head of llama.cpp's CPU flash attention (f16 K/V, AVX-512 build): q to f16, the
 * score as ggml_vec_dot_f16 orders it, online softmax with glibc's expf, the V accumulator in
 * f16. keys/values: f16 values per position.
 */
export function flashAttentionHead(q: ArrayLike<number>, keys: ArrayLike<number>[], values: ArrayLike<number>[], scale: number, softcap = 0): Float32Array {
  const hd = q.length;
  const qh = Array.from(q, roundF16);
  let M = -Infinity, S = 0;
  const acc = new Array<number>(hd).fill(0);
  for (let ic = 0; ic < keys.length; ic++) {
    const k = keys[ic];
    const np = hd & ~63;
    let sumf = 0;
    if (np > 0) {
      const lanes = new Array<number>(64).fill(0);
      for (let i = 0; i < np; i += 64) for (let j = 0; j < 64; j++) lanes[j] = f32(lanes[j] + f32(qh[i + j] * k[i + j]));
      const x = Array.from({ length: 16 }, (_, l) => f32(f32(lanes[l] + lanes[32 + l]) + f32(lanes[16 + l] + lanes[48 + l])));
      const u = Array.from({ length: 8 }, (_, i) => f32(x[i + 8] + x[i]));
      const v = Array.from({ length: 4 }, (_, i) => f32(u[i + 4] + u[i]));
      sumf = f32(f32(v[0] + v[2]) + f32(v[1] + v[3]));
    }
    for (let i = np; i < hd; i++) sumf += qh[i] * k[i];
    let s = f32(f32(sumf) * scale);
    if (softcap !== 0) s = f32(softcap * f32(Math.tanh(s)));
    let ms = 1, vs = 1;
    if (s > M) {
      const Mold = M;
      M = s;
      ms = expfGlibc(f32(Mold - M));
      for (let i = 0; i < hd; i++) acc[i] = roundF16(f32(acc[i] * ms));
    } else {
      vs = expfGlibc(f32(s - M));
    }
    for (let i = 0; i < hd; i++) acc[i] = roundF16(fmaF32(values[ic][i], vs, acc[i]));
    S = f32(f32(S * ms) + vs);
  }
  const inv = f32(1 / S);
  return Float32Array.from(acc, (a) => f32(a * inv));
}

/** A row quantized to Q8_K blocks as quantize_row_q8_K does: per 256, d and 256 quants. */
export interface Q8KRow { d: Float32Array; qs: Int8Array }

export function quantizeRowQ8K(x: ArrayLike<number>): Q8KRow {
  const nb = x.length / 256;
  const d = new Float32Array(nb), qs = new Int8Array(x.length);
  for (let b = 0; b < nb; b++) {
    let amax = 0, peak = 0;
    for (let j = 0; j < 256; j++) {
      const v = x[256 * b + j];
      if (Math.abs(v) > amax) { amax = Math.abs(v); peak = v; }
    }
    if (amax === 0) continue;
    const iscale = f32(-127 / peak);
    for (let j = 0; j < 256; j++) qs[256 * b + j] = Math.min(127, roundHalfEven(f32(iscale * x[256 * b + j])));
    d[b] = f32(1 / iscale);
  }
  return { d, qs };
}

const roundHalfEven = (v: number) => {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/** Sub-block j's 6-bit (scale, min) of a Q4_K / Q5_K header (get_scale_min_k4). */
function scaleMinK4(h: Uint8Array, j: number): [number, number] {
  return j < 4 ? [h[4 + j] & 63, h[8 + j] & 63] : [(h[8 + j] & 0xf) | ((h[j] >> 6) << 4), (h[8 + j] >> 4) | ((h[4 + j] >> 6) << 4)];
}

/**
 * One Q4_K row (GGUF bytes) on Q8_K blocks as ggml_gemv_q4_K_8x8_q8_K rounds it on x86, or with
 * `inFour` as its 4-row ggml_gemm (AVX-512): a multiply-add per pair of sub-blocks, not per block.
 */
export function dotQ4KRepacked(row: Uint8Array, x: Q8KRow, inFour = false): number {
  let acc = 0, accMin = 0;
  for (let b = 0; b < x.d.length; b++) {
    const blk = row.subarray(144 * b, 144 * (b + 1));
    const d = halfToFloat(blk[0] | (blk[1] << 8)), dmin = halfToFloat(blk[2] | (blk[3] << 8));
    let isum = 0, imin = 0;
    for (let s = 0; s < 8; s++) {
      const [sc, m] = scaleMinK4(blk, s);
      let dot = 0, xs = 0;
      for (let l = 0; l < 32; l++) {
        const byte = blk[16 + 32 * (s >> 1) + l];
        const q = s & 1 ? byte >> 4 : byte & 15;
        const a = x.qs[256 * b + 32 * s + l];
        dot += q * a;
        xs += a;
      }
      isum += sc * dot;
      imin += m * xs;
      if (inFour && s % 2 === 1) {
        acc = fmaF32(f32(isum), f32(d * x.d[b]), acc);
        accMin = fmaF32(f32(imin), f32(dmin * x.d[b]), accMin);
        isum = imin = 0;
      }
    }
    if (!inFour) {
      acc = fmaF32(f32(isum), f32(d * x.d[b]), acc);
      accMin = fmaF32(f32(imin), f32(dmin * x.d[b]), accMin);
    }
  }
  return f32(acc - accMin);
}

/** One Q6_K row (GGUF bytes) on Q8_K blocks as ggml_vec_dot_q6_K_q8_K's AVX2 code rounds it. */
export function dotQ6KVecDot(row: Uint8Array, x: Q8KRow): number {
  const lanes = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let b = 0; b < x.d.length; b++) {
    const blk = row.subarray(210 * b, 210 * (b + 1));
    const sc = (i: number) => (blk[192 + i] << 24) >> 24;
    const d = f32(x.d[b] * halfToFloat(blk[208] | (blk[209] << 8)));
    const sumi = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let e = 0; e < 256; e++) {
      const h = e >> 7, q = (e >> 5) & 3, l = e & 31;
      const lo = (blk[64 * h + 32 * (q & 1) + l] >> (4 * (q >> 1))) & 15;
      const hi = (blk[128 + 32 * h + l] >> (2 * q)) & 3;
      sumi[l >> 2] += sc(e >> 4) * (lo | (hi << 4)) * x.qs[256 * b + e];
    }
    for (let j = 0; j < 8; j++) {
      let sub = 0;
      for (let k = 0; k < 2; k++) {
        let bsum = 0;
        for (let i = 0; i < 16; i++) bsum += x.qs[256 * b + 32 * j + 16 * k + i];
        sub += sc(2 * j + k) * bsum;
      }
      lanes[j] = fmaF32(d, f32(sumi[j] - 32 * sub), lanes[j]);
    }
  }
  return f32(f32(f32(lanes[0] + lanes[4]) + f32(lanes[2] + lanes[6])) + f32(f32(lanes[1] + lanes[5]) + f32(lanes[3] + lanes[7])));
}
