// Causal attention of each new token's query heads over the KV cache (grouped-query heads share
// a KV head), computed the way llama.cpp's CPU flash attention (its default) computes it, so that
// our numbers are its numbers: q rounded to f16; each key's score the f16·f16 dot in the order of
// its AVX-512 build, times the scale; keys visited in order with a running max M and sum S in f32
// (expf as the C library rounds it); the V accumulator held in f16: rescaled on a new max
// (f16(acc * ms)), then acc = f16(fma(v, vs, acc)); out = acc * (1 / S).
// One workgroup per (head, token). Keys go in tiles of CH: scores in parallel (a key per thread);
// the running max before each key (a serial scan), which lets every key's expf run in parallel;
// the sum S in key order (one thread); then the accumulator (four head dimensions per thread).
// The caches are read four elements per load (KV_QUAD: two u32 of two halves each, or a vec4 of
// f32; head_dim must be a multiple of 4): on lavapipe every per-thread load is a loop over the
// SIMD lanes, so the count of loads, not their width, is what costs (quads: 1.8x faster than
// single elements at 200 keys).
{{ENABLE_F16}}

struct Params {
  n_head: u32,
  n_head_kv: u32,
  head_dim: u32,
  qkv_stride: u32,
  kv_dim: u32,
  out_stride: u32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read> QKV: array<f32>;
@group(0) @binding(1) var<storage, read> KC: array<{{KV_QUAD}}>;
@group(0) @binding(2) var<storage, read> VC: array<{{KV_QUAD}}>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
@group(0) @binding(4) var<storage, read> S: array<u32>;
@group(0) @binding(5) var<uniform> P: Params;

const WG: u32 = 64u;
const CH: u32 = 256u;
const MAX_HD: u32 = 256u;
const QPT: u32 = MAX_HD / 4u / WG;  // quads of head dims per thread
const NO_MAX: f32 = -3.0e38;   // M before the first key (expf of anything below it is 0)

var<workgroup> qv: array<f32, MAX_HD>;
var<workgroup> weight: array<f32, CH>;   // scores, then vs = expf(s - M)
var<workgroup> weight_split: array<vec2<f32>, CH>;  // vs split for fma_half
var<workgroup> rescale: array<f32, CH>;  // ms = expf(M_old - M) where a key raised the max, else 1
var<workgroup> chain: vec2<f32>;         // (M, S) carried from tile to tile
var<workgroup> prior_max: array<f32, CH>;  // M before each key
var<workgroup> tile_max: f32;

/** Elements 4i .. 4i + 3 of a cache. */
fn kv_quad(w: {{KV_QUAD}}) -> vec4<f32> { return {{KV_UNPACK}}; }

/**
 * ggml_vec_dot_f16 of q with the key at kb, as an AVX-512 build runs it: 64-element steps into
 * four 16-lane f32 accumulators (products of halves are exact), folded x0+x2, x1+x3, x0+x1, then
 * _mm512_reduce_add_ps's order (halves of 8, of 4, then (0+2) + (1+3)); the elements after the
 * last full step are added one by one in double precision, and the double rounded to f32.
 */
fn score(kb: u32, hd: u32) -> f32 {
  let np = hd & ~63u;
  let kq = kb / 4u;
  var total = vec2<f32>(0.0, 0.0);
  if (np > 0u) {
    var lanes: array<f32, 64>;
    for (var i = 0u; i < np; i += 64u) {
      for (var j = 0u; j < 64u; j += 4u) {
        let k = kv_quad(KC[kq + (i + j) / 4u]);
        for (var e = 0u; e < 4u; e++) { lanes[j + e] = lanes[j + e] + qv[i + j + e] * k[e]; }
      }
    }
    var x: array<f32, 16>;
    for (var l = 0u; l < 16u; l++) {
      x[l] = opaque(opaque(lanes[l] + lanes[32u + l]) + opaque(lanes[16u + l] + lanes[48u + l]));
    }
    var u: array<f32, 8>;
    for (var k = 0u; k < 8u; k++) { u[k] = opaque(x[k + 8u] + x[k]); }
    var v: array<f32, 4>;
    for (var k = 0u; k < 4u; k++) { v[k] = opaque(u[k + 4u] + u[k]); }
    total.x = opaque(opaque(v[0] + v[2]) + opaque(v[1] + v[3]));
  }
  for (var i = np; i < hd; i += 4u) {
    let k = kv_quad(KC[kq + i / 4u]);
    for (var e = 0u; e < 4u; e++) { total = dsum_add(total, qv[i + e] * k[e]); }
  }
  return total.x + total.y;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  exact_init();
  let h = wg.x;
  let t = wg.y;
  let hd = P.head_dim;
  let n = S[0] + t + 1u;  // causal: positions 0..pos
  let kvo = (h / (P.n_head / P.n_head_kv)) * hd;
  for (var d = li; d < hd; d += WG) { qv[d] = round_f16(QKV[t * P.qkv_stride + h * hd + d]); }
  if (li == 0u) { chain = vec2<f32>(NO_MAX, 0.0); }
  workgroupBarrier();

  var acc: array<vec4<f32>, QPT>;
  for (var c0 = 0u; c0 < n; c0 += CH) {
    let cn = min(CH, n - c0);
    for (var p = li; p < cn; p += WG) { weight[p] = score((c0 + p) * P.kv_dim + kvo, hd) * P.scale; }
    workgroupBarrier();
    // the running max before each key (a serial scan, one compare per key)...
    if (li == 0u) {
      var m = chain.x;
      for (var p = 0u; p < cn; p++) { prior_max[p] = m; m = max(m, weight[p]); }
      tile_max = m;
    }
    workgroupBarrier();
    // ...makes each key's expf independent: in parallel
    for (var p = li; p < cn; p += WG) {
      let s = weight[p];
      let m = prior_max[p];
      var ms = 1.0;
      var vs = 1.0;
      if (s > m) { ms = expf_libc(m - s); } else { vs = expf_libc(s - m); }
      rescale[p] = ms;
      weight[p] = vs;
      weight_split[p] = split12(vs);
    }
    workgroupBarrier();
    // the sum S = S * ms + vs, in key order
    if (li == 0u) {
      var sum = chain.y;
      for (var p = 0u; p < cn; p++) { sum = opaque(sum * rescale[p]) + weight[p]; }
      chain = vec2<f32>(tile_max, sum);
    }
    for (var i = 0u; i < QPT; i++) {
      let dq = li + i * WG;
      if (4u * dq < hd) {
        var a = acc[i];
        for (var p = 0u; p < cn; p++) {
          let r = rescale[p];
          if (r != 1.0) { for (var e = 0u; e < 4u; e++) { a[e] = round_f16(a[e] * r); } }
          let v = kv_quad(VC[((c0 + p) * P.kv_dim + kvo) / 4u + dq]);
          let w = weight[p];
          let ws = weight_split[p];
          for (var e = 0u; e < 4u; e++) { a[e] = round_f16(fma_half(v[e], w, ws, a[e])); }
        }
        acc[i] = a;
      }
    }
    workgroupBarrier();
  }
  let inv = 1.0 / chain.y;
  for (var i = 0u; i < QPT; i++) {
    let dq = li + i * WG;
    if (4u * dq < hd) {
      let o = t * P.out_stride + h * hd + 4u * dq;
      for (var e = 0u; e < 4u; e++) { O[o + e] = acc[i][e] * inv; }
    }
  }
}
