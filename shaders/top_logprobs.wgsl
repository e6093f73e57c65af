// The most likely tokens of each sampled row that asks for them (SampleRow.top_k, at most
// MAX_TOP), with their log-probabilities under the unscaled distribution: what a Responses
// request's `top_logprobs` returns, without reading the logits back. A workgroup per row; top_k
// rounds, each the largest logit ranked below the previous round's pick (logit descending, id
// ascending on ties, so ids match a stable sort). The log-sum-exp comes from sample_partial.wgsl's
// partials as in sample.wgsl (the host sets want_logprob on these rows), so the top entry of a
// greedy row has exactly the sampled token's logprob. Masked (-inf) logits end the list early:
// an id of 0xFFFFFFFF marks the end.

struct Params {  // shared with the sampler passes
  n_vocab: u32,
}

@group(0) @binding(0) var<storage, read> LOGITS: array<f32>;
@group(0) @binding(1) var<storage, read_write> TOP: array<vec2<u32>>;  // (id, logprob bits), MAX_TOP per row
@group(0) @binding(2) var<storage, read> S: Step;
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<storage, read> PART: array<vec4<u32>>;

const WG: u32 = 256u;
const PARTS: u32 = {{GROUPS}}u * 256u;
const MAX_TOP: u32 = {{MAX_TOP}}u;
const NONE: u32 = 0xFFFFFFFFu;

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;

/** (v, i) ranks above (bv, bi): a larger logit, or the same logit and a lower id. */
fn above(v: f32, i: u32, bv: f32, bi: u32) -> bool {
  return v > bv || (v == bv && i < bi);
}

/** The workgroup's best (v, i) of the threads' candidates. */
fn reduce_best(li: u32, v: f32, i: u32) -> vec2<u32> {
  best_v[li] = v;
  best_i[li] = i;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s && above(best_v[li + s], best_i[li + s], best_v[li], best_i[li])) {
      best_v[li] = best_v[li + s];
      best_i[li] = best_i[li + s];
    }
    workgroupBarrier();
  }
  let out = vec2<u32>(bitcast<u32>(best_v[0]), best_i[0]);
  workgroupBarrier();
  return out;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32> {{SG_ARGS}}) {
  {{SG_INIT}}
  let r = wg.y;
  let k = min(S.rows[r].top_k, MAX_TOP);
  if (k == 0u) { return; }
  let n = P.n_vocab;
  let l0 = r * n;
  let p0 = r * PARTS;

  // log-sum-exp, as sample.wgsl computes it
  var pv = -3.4e38;
  var pi = NONE;
  for (var g = li; g < PARTS; g += WG) {
    let v = bitcast<f32>(PART[p0 + g].x);
    if (above(v, PART[p0 + g].y, pv, pi)) { pv = v; pi = PART[p0 + g].y; }
  }
  let mx = bitcast<f32>(reduce_best(li, pv, pi).x);
  var z = 0.0;
  for (var g = li; g < PARTS; g += WG) { z += bitcast<f32>(PART[p0 + g].z) * exp(bitcast<f32>(PART[p0 + g].x) - mx); }
  let lse = mx + log(wg_sum(z, li));

  var prev_v = 3.4e38;
  var prev_i = NONE;
  for (var j = 0u; j < MAX_TOP; j++) {
    if (j >= k) { break; }
    var bv = -3.4e38;
    var bi = NONE;
    for (var i = li; i < n; i += WG) {
      let v = LOGITS[l0 + i];
      // ranked below the previous pick, and above this thread's best so far
      if (above(prev_v, prev_i, v, i) && above(v, i, bv, bi)) { bv = v; bi = i; }
    }
    let best = reduce_best(li, bv, bi);
    let v = bitcast<f32>(best.x);
    let id = select(best.y, NONE, v <= -3.4e38);
    if (li == 0u) { TOP[r * MAX_TOP + j] = vec2<u32>(id, bitcast<u32>(v - lse)); }
    prev_v = v;
    prev_i = best.y;
  }
  // the rest of the row's entries, past k or past the last finite logit
  if (li == 0u) {
    for (var j = k; j < MAX_TOP; j++) { TOP[r * MAX_TOP + j] = vec2<u32>(NONE, 0u); }
  }
}
