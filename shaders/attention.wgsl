// Causal attention of each new token's query heads over the KV cache (grouped-query heads share
// a KV head), computed the way llama.cpp's CPU flash attention (its default) computes it, so that
// our numbers are its numbers: q rounded to f16; each key's score the f16·f16 dot in the order of
// its AVX-512 build, times the scale; keys visited in order with a running max M and sum S in f32
// (expf as the C library rounds it); the V accumulator held in f16: rescaled on a new max
// (f16(acc * ms)), then acc = f16(fma(v, vs, acc)); out = acc * (1 / S).
// One workgroup per (head, token). Keys go in tiles of CH: scores in parallel (a key per thread,
// or KPT keys per thread sharing each load of q when head_dim < 64); the running max before each
// key (a serial scan), which lets every key's expf run in parallel; the sum S in key order (one
// thread); then the accumulator (VQ quads of head dimensions per thread).
// On lavapipe every per-thread load is a loop over the SIMD lanes, so the count of loads, not
// their width, is what costs: the caches are read four elements per load (KV_QUAD: two u32 of two
// halves each, or a vec4 of f32; head_dim must be a multiple of 4; 1.8x faster than single
// elements at 200 keys), q and each key's (ms, vs, vs split) sit in workgroup memory as vec4s,
// and eight dimensions per thread (VQ = 2, when head_dim allows) keep a 48-wide head's
// accumulator on one SIMD group instead of two (stories15M decode attention: 0.72x the time).
{{ENABLE_F16}}

// (Params and bindings: attention_score.wgsl)
alias VElem = {{KV_QUAD}};  // V read four elements per load

const WG: u32 = 64u;
const CH: u32 = 256u;
const MAX_HD: u32 = 256u;
const VQ: u32 = {{VQ}}u;   // quads of head dims per thread (head_dim <= 4 * VQ * WG)
const KPT: u32 = CH / WG;  // keys per thread in a tile
const NO_MAX: f32 = -3.0e38;   // M before the first key (expf of anything below it is 0)

var<workgroup> qv: array<vec4<f32>, MAX_HD / 4u>;
var<workgroup> score_of: array<f32, CH>;
// per key: ms = expf(M_old - M) where the key raised the max (else 1), vs = expf(s - M), and vs
// split for fma_half
var<workgroup> key_weights: array<vec4<f32>, CH>;
var<workgroup> chain: vec2<f32>;         // (M, S) carried from tile to tile
var<workgroup> prior_max: array<f32, CH>;  // M before each key
var<workgroup> tile_max: f32;

/** Quad i of q (score, attention_score.wgsl). */
fn q_quad(i: u32) -> vec4<f32> { return qv[i]; }

/** score() of KPT keys at once, for head_dim < 64 (all elements in the double-precision tail). */
fn scores_short(kb: array<u32, KPT>, hd: u32) -> array<f32, KPT> {
  var total: array<vec2<f32>, KPT>;
  for (var i = 0u; i < hd; i += 4u) {
    let q = qv[i / 4u];
    // the loads first, then the keys' sums interleaved: independent chains side by side
    var k: array<vec4<f32>, KPT>;
    for (var r = 0u; r < KPT; r++) { k[r] = kv_quad(KC[(kb[r] + i) / 4u]); }
    for (var e = 0u; e < 4u; e++) {
      for (var r = 0u; r < KPT; r++) { total[r] = dsum_add(total[r], q[e] * k[r][e]); }
    }
  }
  var s: array<f32, KPT>;
  for (var r = 0u; r < KPT; r++) { s[r] = total[r].x + total[r].y; }
  return s;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  exact_init();
  let h = wg.x;
  let t = wg.y;
  let hd = P.head_dim;
  let tok = S.tokens[t];
  let n = tok.pos + 1u;  // causal: positions 0..pos of its own sequence
  let kvo = (h / (P.n_head / P.n_head_kv)) * hd;
  for (var d = li; d < hd / 4u; d += WG) {
    let b = t * P.qkv_stride + h * hd + 4u * d;
    let qs = P.q_scale;
    qv[d] = vec4<f32>(round_f16(QKV[b] * qs), round_f16(QKV[b + 1u] * qs), round_f16(QKV[b + 2u] * qs), round_f16(QKV[b + 3u] * qs));
  }
  if (li == 0u) { chain = vec2<f32>(NO_MAX, 0.0); }
  workgroupBarrier();

  var acc: array<vec4<f32>, VQ>;
  // keys before the window are skipped, as llama.cpp skips its masked ones
  for (var c0 = first_key(tok.pos); c0 < n; c0 += CH) {
    let cn = min(CH, n - c0);
    if (hd < 64u) {
      // keys li, li + WG, ...: those past the tile recompute its last key and are not stored
      var kb: array<u32, KPT>;
      for (var r = 0u; r < KPT; r++) { kb[r] = kv_row(tok.slot, c0 + min(li + r * WG, cn - 1u)) * P.kv_dim + kvo; }
      let s = scores_short(kb, hd);
      for (var r = 0u; r < KPT; r++) {
        if (li + r * WG < cn) { score_of[li + r * WG] = scaled_score(s[r]); }
      }
    } else {
      for (var p = li; p < cn; p += WG) { score_of[p] = scaled_score(score(kv_row(tok.slot, c0 + p) * P.kv_dim + kvo, hd)); }
    }
    workgroupBarrier();
    // the running max before each key (a serial scan, one compare per key)...
    if (li == 0u) {
      var m = chain.x;
      for (var p = 0u; p < cn; p++) { prior_max[p] = m; m = max(m, score_of[p]); }
      tile_max = m;
    }
    workgroupBarrier();
    // ...makes each key's expf independent: in parallel
    for (var p = li; p < cn; p += WG) {
      let s = score_of[p];
      let m = prior_max[p];
      var ms = 1.0;
      var vs = 1.0;
      if (s > m) { ms = expf_libc(m - s); } else { vs = expf_libc(s - m); }
      key_weights[p] = vec4<f32>(ms, vs, split12(vs));
    }
    workgroupBarrier();
    // the sum S = S * ms + vs, in key order
    if (li == 0u) {
      var sum = chain.y;
      for (var p = 0u; p < cn; p++) { let kw = key_weights[p]; sum = opaque(sum * kw.x) + kw.y; }
      chain = vec2<f32>(tile_max, sum);
    }
    if (4u * VQ * li < hd) {
      var a = acc;
      for (var p = 0u; p < cn; p++) {
        let kw = key_weights[p];
        let vq = (kv_row(tok.slot, c0 + p) * P.kv_dim + kvo) / 4u + VQ * li;
        if (kw.x != 1.0) {
          for (var i = 0u; i < VQ; i++) {
            for (var e = 0u; e < 4u; e++) { a[i][e] = round_f16(a[i][e] * kw.x); }
          }
        }
        for (var i = 0u; i < VQ; i++) {
          let v = kv_quad(VC[vq + i]);
          for (var e = 0u; e < 4u; e++) { a[i][e] = round_f16(fma_half(v[e], kw.y, kw.zw, a[i][e])); }
        }
      }
      acc = a;
    }
    workgroupBarrier();
  }
  let inv = 1.0 / chain.y;
  if (4u * VQ * li < hd) {
    let o = t * P.out_stride + h * hd + 4u * VQ * li;
    for (var i = 0u; i < VQ; i++) {
      for (var e = 0u; e < 4u; e++) { O[o + 4u * i + e] = acc[i][e] * inv; }
    }
  }
}
