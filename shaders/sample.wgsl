// Picks the next token on the GPU from the last token's logits, so only 8 bytes come back:
// greedy argmax (lowest id on ties), or temperature + top-p sampling with one uniform draw per
// step (RNG[step], written by the host from a seeded stream). The nucleus threshold is found by
// bisection on the scaled logit, so nothing is sorted. Also reports the token's log-probability
// under the unscaled distribution (when P.want_logprob), feeds the id to the next step's
// embedding lookup and advances the sequence state (pos += tokens, tokens = 1, step += 1).
//
// Second pass: sample_partial.wgsl has left PARTS partials (max, lowest id of the max, sum of
// exp(L - max)) over strided shares of the logits in PART; greedy only combines those (the
// lowest id among the shares' maxima), and the log-sum-exp is max + log(sum_g z_g * exp(max_g -
// max)).

struct Params {  // shared with sample_partial.wgsl
  n_vocab: u32,
  temperature: f32,  // 0: greedy
  top_p: f32,
  rng_len: u32,
  want_logprob: u32,
}

@group(0) @binding(0) var<storage, read> L: array<f32>;
@group(0) @binding(1) var<storage, read_write> OUT: array<u32>;
@group(0) @binding(2) var<storage, read_write> IDS: array<u32>;
@group(0) @binding(3) var<storage, read_write> S: array<u32>;
@group(0) @binding(4) var<storage, read> RNG: array<f32>;
@group(0) @binding(5) var<uniform> P: Params;
@group(0) @binding(6) var<storage, read> PART: array<vec4<u32>>;

const WG: u32 = 256u;
const PARTS: u32 = {{GROUPS}}u * 256u;  // sample_partial.wgsl's threads

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;
var<workgroup> part: array<f32, WG>;
var<workgroup> picked: u32;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32 {{SG_ARGS}}) {
  {{SG_INIT}}
  let n = P.n_vocab;
  // argmax over the partials, the lower id winning ties
  var bv = -3.4e38;
  var bi = 0xFFFFFFFFu;
  for (var g = li; g < PARTS; g += WG) {
    let v = bitcast<f32>(PART[g].x);
    let i = PART[g].y;
    if (v > bv || (v == bv && i < bi)) { bv = v; bi = i; }
  }
  best_v[li] = bv;
  best_i[li] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s) {
      let ov = best_v[li + s];
      let oi = best_i[li + s];
      if (ov > best_v[li] || (ov == best_v[li] && oi < best_i[li])) { best_v[li] = ov; best_i[li] = oi; }
    }
    workgroupBarrier();
  }
  let mx = best_v[0];
  let argmax = best_i[0];
  workgroupBarrier();

  var z1 = 0.0;
  for (var g = li; g < PARTS; g += WG) { z1 += bitcast<f32>(PART[g].z) * exp(bitcast<f32>(PART[g].x) - mx); }
  let lse = mx + log(wg_sum(z1, li));

  var id = argmax;
  if (P.temperature > 0.0) {
    let inv_t = 1.0 / P.temperature;
    // Contiguous ranges per thread so the final walk follows vocabulary order.
    let per = (n + WG - 1u) / WG;
    let lo_i = min(li * per, n);
    let hi_i = min(lo_i + per, n);
    var zt = 0.0;
    for (var i = lo_i; i < hi_i; i++) { zt += exp((L[i] - mx) * inv_t); }
    let total = wg_sum(zt, li);
    // Largest threshold tau (on the scaled logit, <= 0) whose kept mass still reaches top_p.
    var keep_lo = -104.0;  // exp(-104) underflows: keeps everything
    if (P.top_p < 1.0) {
      var a = -104.0;
      var b = 0.0;
      for (var it = 0u; it < 30u; it++) {
        let mid = 0.5 * (a + b);
        var ms = 0.0;
        for (var i = lo_i; i < hi_i; i++) {
          let s = (L[i] - mx) * inv_t;
          if (s >= mid) { ms += exp(s); }
        }
        let mass = wg_sum(ms, li);
        if (mass >= P.top_p * total) { a = mid; } else { b = mid; }
      }
      keep_lo = a;
    }
    var mine = 0.0;
    for (var i = lo_i; i < hi_i; i++) {
      let s = (L[i] - mx) * inv_t;
      if (s >= keep_lo) { mine += exp(s); }
    }
    part[li] = mine;
    if (li == 0u) { picked = argmax; }
    workgroupBarrier();
    var before = 0.0;
    var kept = 0.0;
    for (var i = 0u; i < WG; i++) {
      if (i < li) { before += part[i]; }
      kept += part[i];
    }
    let goal = RNG[S[2] % P.rng_len] * kept;
    if (goal >= before && goal < before + mine) {
      var run = before;
      var last = 0xFFFFFFFFu;
      for (var i = lo_i; i < hi_i; i++) {
        let s = (L[i] - mx) * inv_t;
        if (s >= keep_lo) {
          run += exp(s);
          last = i;
          if (run > goal) { break; }
        }
      }
      if (last != 0xFFFFFFFFu) { picked = last; }
    }
    workgroupBarrier();
    id = picked;
  }
  if (li == 0u) {
    OUT[0] = id;
    OUT[1] = select(0u, bitcast<u32>(L[id] - lse), P.want_logprob != 0u);
    IDS[0] = id;
    S[0] = S[0] + S[1];
    S[1] = 1u;
    S[2] = S[2] + 1u;
  }
}
