// Exact f32 building blocks, for kernels that reproduce a CPU reference's roundings one by one
// (llama.cpp's fused multiply-adds, its f16 accumulators, its double-precision sums).
//
// FUSED_FMA says whether this device's fma() rounds once (probed when the device is acquired:
// lavapipe, for one, lowers it to a multiply and an add). Without it, a fused multiply-add is
// rebuilt from Dekker's exact product and an exact sum, which needs the compiler to keep each
// f32 operation as written (no contraction, no reassociation), as the probe also checks.

const FUSED_FMA: bool = {{FUSED_FMA}};

// Zero, but not known to the compiler (workgroup memory starts zeroed at run time). OR-ing it into
// a value's bits makes a copy the compiler cannot relate to the original, so `s - (s - a)` in the
// error terms below is not folded to `a` by algebraic rules meant for inexact arithmetic.
// Every kernel that uses these helpers calls exact_init() first: it reads the workgroup zero
// once into a private copy, which stays in a register. (Reading workgroup memory in each opaque()
// put a load on every exact operation's dependency chain: attention ran 19% slower on lavapipe.)
var<workgroup> OPAQUE_ZERO: u32;
var<private> opaque_zero: u32;
fn exact_init() { opaque_zero = OPAQUE_ZERO; }
fn opaque(x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(x) | opaque_zero); }

/** a = hi + lo, each half with at most 12 significant bits (Veltkamp). */
fn split12(a: f32) -> vec2<f32> {
  let c = opaque(4097.0 * a);
  let hi = opaque(c - opaque(c - a));
  return vec2<f32>(hi, a - hi);
}

/** a * b = p + e exactly. */
fn two_prod(a: f32, b: f32) -> vec2<f32> {
  let p = opaque(a * b);
  if (FUSED_FMA) { return vec2<f32>(p, fma(a, b, -p)); }
  let x = split12(a);
  let y = split12(b);
  return vec2<f32>(p, dekker_err(x, y, p));
}

/** Dekker's error term of p = fl(x * y), from exact partial products, summed in this order. */
fn dekker_err(x: vec2<f32>, y: vec2<f32>, p: f32) -> f32 {
  let t = opaque(opaque(opaque(x.x * y.x - p) + x.x * y.y) + x.y * y.x);
  return t + x.y * y.y;
}

/** a + b = s + e exactly. */
fn two_sum(a: f32, b: f32) -> vec2<f32> {
  let s = opaque(a + b);
  let bb = opaque(s - a);
  let aa = opaque(s - bb);
  return vec2<f32>(s, (a - aa) + (b - bb));
}

/** a * b + c with one rounding. */
fn fma_exact(a: f32, b: f32, c: f32) -> f32 {
  if (FUSED_FMA) { return fma(a, b, c); }
  let p = two_prod(a, b);
  let s = two_sum(p.x, c);
  return s.x + opaque(s.y + p.y);
}

/**
 * d as three parts of at most 8 significant bits each (its mantissa's top 8 bits, the next 8,
 * the last 8), d = x + y + z exactly: for fma_int.
 */
fn split8x3(d: f32) -> vec3<f32> {
  let b = bitcast<u32>(d);
  let hi = bitcast<f32>(b & 0xFFFF0000u);
  let hm = bitcast<f32>(b & 0xFFFFFF00u);
  return vec3<f32>(hi, opaque(hm - hi), opaque(d - hm));
}

/**
 * d * i + c with one rounding, for an integer i with |i| <= 2^16 (a Q8_0 or Q4_0 dot of four,
 * or a Q4_0 block's) and d split by split8x3. Each part times i is exact (8 + 16 bits), so the
 * product's rounding error is (hi i - p) + mid i + lo i, each step exact (Sterbenz: the parts
 * fall by 2^8 each): three products and no split of i, where Dekker's needs four and one.
 */
fn fma_int(d: f32, dp: vec3<f32>, i: i32, c: f32) -> f32 {
  let fi = f32(i);
  if (FUSED_FMA) { return fma(d, fi, c); }
  let p = opaque(d * fi);
  let e = opaque(opaque(dp.x * fi - p) + dp.y * fi) + dp.z * fi;
  let s = two_sum(p, c);
  return s.x + opaque(s.y + e);
}

/**
 * h * b + c with one rounding when h has at most 12 significant bits (an f16 value, say) and b
 * is already split by split12: h needs no split of its own, so Dekker's product costs two
 * multiplies.
 */
fn fma_half(h: f32, b: f32, bs: vec2<f32>, c: f32) -> f32 {
  if (FUSED_FMA) { return fma(h, b, c); }
  let p = opaque(h * b);
  let e = opaque(h * bs.x - p) + h * bs.y;
  let s = two_sum(p, c);
  return s.x + opaque(s.y + e);
}

/** x rounded to the nearest binary16 value (ties to even), kept in an f32. */
fn round_f16(x: f32) -> f32 {
  let a = abs(x);
  let b = bitcast<u32>(x);
  let normal = bitcast<f32>((b + 0xFFFu + ((b >> 13u) & 1u)) & 0xFFFFE000u);
  // below the smallest normal half the quantum is fixed at 2^-24: scale, round, scale back
  let tiny = round(x * 16777216.0) * 5.9604644775390625e-08;
  let inf = bitcast<f32>((b & 0x80000000u) | 0x7F800000u);
  // selects, not branches: a branch per call costs SIMD code (lavapipe) a mask update each
  return select(select(normal, inf, a >= 65520.0), tiny, a < 6.103515625e-05);
}

// glibc's expf (the C library llama.cpp's CPU kernels call), its double-precision steps carried
// in pairs of f32: x / ln2 * 32 = k + r, exp(x) = 2^(k/32) * (1 + C2 r + C1 r^2 + C0 r^3), one
// final rounding. The table holds 2^(i/32) as (hi, lo).
const EXP2_32 = array<vec2<f32>, 32>({{EXP2_TABLE}});
const INV_LN2_32 = vec2<f32>({{INV_LN2_32}});
const EXPF_C2 = vec2<f32>({{EXPF_C2}});
const EXPF_C1: f32 = {{EXPF_C1}};
const EXPF_C0: f32 = {{EXPF_C0}};

fn expf_libc(x: f32) -> f32 {
  if (x < -103.97208404541015625) { return 0.0; }
  if (x > 88.72283172607421875) { return x * 3.0e38; }  // overflows to +inf at run time
  // z = x * 32/ln2 as a pair; k its nearest integer (ties to even, as the shift trick does)
  let zh = two_prod(x, INV_LN2_32.x);
  let z = two_sum(zh.x, opaque(zh.y + x * INV_LN2_32.y));
  let k = round(z.x);
  let r = two_sum(opaque(z.x - k), z.y);  // z.x - k is exact
  // 1 + C2 r + (C1 + C0 r) r^2, the first two terms as a pair
  let c2r = two_prod(EXPF_C2.x, r.x);
  let c2r_lo = opaque(opaque(c2r.y + EXPF_C2.x * r.y) + EXPF_C2.y * r.x);
  // (C1 + C0 r) r^2 with its leading part C1 r^2 as a pair: it reaches 2^-14 of the result
  let r2 = two_prod(r.x, r.x);
  let c1r2 = two_prod(EXPF_C1, r2.x);
  let tail_lo = opaque(opaque(c1r2.y + EXPF_C1 * r2.y) + EXPF_C0 * r.x * r2.x);
  let p = two_sum(1.0, c2r.x);
  let q = two_sum(p.x, c1r2.x);
  let p_lo = opaque(opaque(opaque(p.y + q.y) + c2r_lo) + tail_lo);
  // times 2^(i/32), then 2^(k div 32)
  let ki = i32(k);
  let t = EXP2_32[u32(ki & 31)];
  let m = two_prod(t.x, q.x);
  let y = m.x + opaque(opaque(m.y + t.x * p_lo) + t.y * q.x);
  return ldexp(y, ki >> 5u);
}

/**
 * A double-precision running sum of exact f32 terms, carried as (hi, lo): each addition's error
 * is exact and summed in f32 on the side, which keeps the double's value to ~2^-45, enough to
 * round it the same way in the end (hi + lo).
 */
fn dsum_add(acc: vec2<f32>, x: f32) -> vec2<f32> {
  let s = two_sum(acc.x, x);
  return vec2<f32>(s.x, acc.y + s.y);
}

/** The sum of two such pair sums, renormalized (the same value whichever comes first). */
fn pair_add(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let s = two_sum(a.x, b.x);
  return two_sum(s.x, opaque(s.y + opaque(a.y + b.y)));
}

// ggml's vectorized expf and silu as an AVX-512 build runs them (x / (1 + exp(-x)), the exp a
// polynomial in fused multiply-adds scaled by 2^n), for the SwiGLU of the feed-forward block.
fn expf_ggml(x: f32) -> f32 {
  let z = fma_exact(x, 0x1.715476p+0, 0x1.8p23);
  let n = z - 0x1.8p23;
  let b = fma_exact(-n, 0x1.7f7d1cp-20, fma_exact(-n, 0x1.62e4p-1, x));
  let u = b * b;
  let j = fma_exact(fma_exact(fma_exact(0x1.0e4020p-7, b, 0x1.573e2ep-5), u, fma_exact(0x1.555e66p-3, b, 0x1.fffdb6p-2)),
                    u, fma_exact(0x1.ffffecp-1, b, 1.0));
  if (n > 128.0) { return abs(x) * 3.0e38; }  // +inf at run time
  if (n < -150.0) { return 0.0; }
  return ldexp(j, i32(n));
}

fn silu_ggml(x: f32) -> f32 {
  return x / (1.0 + expf_ggml(0.0 - x));
}
