// First pass of the sampler, for each of the step's sampled rows (grid y; row r's logits start at
// r * n_vocab): PARTS threads (GROUPS workgroups of WG) each scan a strided share of the logits (adjacent threads read adjacent logits) and write a partial (max, lowest id
// holding the max, sum of exp(L - max)) to PART[thread]; the final pass (sample.wgsl) combines
// them. No workgroup memory and no barriers: on lavapipe a workgroup with barriers costs tens
// of microseconds (its invocations become coroutines), one without them a plain SIMD loop.
// The exp-sum, needed only for a log-probability, is skipped unless the row's want_logprob is set; the
// max and its id are exact either way, so greedy picks the same id.

struct Params {  // shared with sample.wgsl
  n_vocab: u32,
}

@group(0) @binding(0) var<storage, read> L: array<f32>;
@group(0) @binding(1) var<storage, read_write> PART: array<vec4<u32>>;  // (max bits, id, sum bits, 0), PARTS per row
@group(0) @binding(2) var<uniform> P: Params;
@group(0) @binding(3) var<storage, read> S: Step;

const WG: u32 = 256u;
const PARTS: u32 = {{GROUPS}}u * WG;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  let row = gid.y;
  let l0 = row * P.n_vocab;
  // Ids only grow along a thread's share, so `>` keeps the lowest id of the thread's maximum.
  var bv = -3.4e38;
  var bi = 0xFFFFFFFFu;
  var z = 0.0;
  if (S.rows[row].want_logprob != 0u) {
    // Online log-sum-exp: rescale the running sum whenever the maximum moves.
    for (var i = t; i < P.n_vocab; i += PARTS) {
      let v = L[l0 + i];
      if (v > bv) { z = z * exp(bv - v) + 1.0; bv = v; bi = i; } else { z += exp(v - bv); }
    }
  } else {
    for (var i = t; i < P.n_vocab; i += PARTS) {
      let v = L[l0 + i];
      if (v > bv) { bv = v; bi = i; }
    }
  }
  PART[row * PARTS + t] = vec4<u32>(bitcast<u32>(bv), bi, bitcast<u32>(z), 0u);
}
