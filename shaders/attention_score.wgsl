// What both attention kernels (attention.wgsl, attention_lanes.wgsl) share: their buffers (each
// kernel names V's element type, `VElem`), the cache's element quads, and a key's score in
// llama.cpp's f16 dot order. Each kernel defines `q_quad(i)`, elements 4i .. 4i + 3 of the query
// (already rounded to f16), from wherever it keeps them. Keys are read through the sequence's
// page table (pages.wgsl): `kb` below is a cache row times kv_dim plus the head's offset.

struct Params {
  n_head: u32,
  n_head_kv: u32,
  head_dim: u32,
  qkv_stride: u32,
  kv_dim: u32,
  out_stride: u32,
  scale: f32,     // of each score (divided by softcap when that is on, as llama.cpp does)
  q_scale: f32,   // of q before its f16 rounding (gemma and phi3 scale q, not the scores)
  softcap: f32,   // s -> softcap * tanh(s) after the scale (gemma2); 0: off
  window: u32,    // keys a query sees, itself included (sliding-window layers); 0: all
}

/** A score after the scale and soft-cap. */
fn scaled_score(s: f32) -> f32 {
  let x = s * P.scale;
  if (P.softcap != 0.0) { return P.softcap * tanh(clamp(x, -15.0, 15.0)); }  // (tanh is 1 in f32 past 9)
  return x;
}

/** The first position a query at `pos` sees: llama.cpp masks keys with pos - key >= window. */
fn first_key(pos: u32) -> u32 {
  if (P.window == 0u || pos + 1u <= P.window) { return 0u; }
  return pos + 1u - P.window;
}

@group(0) @binding(0) var<storage, read> QKV: array<f32>;
@group(0) @binding(1) var<storage, read> KC: array<{{KV_QUAD}}>;
@group(0) @binding(2) var<storage, read> VC: array<VElem>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
@group(0) @binding(4) var<storage, read> S: Step;
@group(0) @binding(5) var<uniform> P: Params;
@group(0) @binding(6) var<storage, read> PT: array<u32>;

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
    // Each sum is fenced (opaque): with the head size a constant, the compiler unrolls this loop
    // and, for 128-wide heads, rewrote the chain into one that rounded differently.
    for (var i = 0u; i < np; i += 64u) {
      for (var j = 0u; j < 64u; j += 4u) {
        let k = kv_quad(KC[kq + (i + j) / 4u]);
        let q = q_quad((i + j) / 4u);
        for (var e = 0u; e < 4u; e++) { lanes[j + e] = opaque(lanes[j + e] + q[e] * k[e]); }
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
    let q = q_quad(i / 4u);
    for (var e = 0u; e < 4u; e++) { total = dsum_add(total, q[e] * k[e]); }
  }
  return total.x + total.y;
}
