// First pass of the sampler: PARTS threads (GROUPS workgroups of WG) each scan a strided share
// of the logits (adjacent threads read adjacent logits) and write a partial (max, lowest id
// holding the max, sum of exp(L - max)) to PART[thread]; the final pass (sample.wgsl) combines
// them. No workgroup memory and no barriers: on lavapipe a workgroup with barriers costs tens
// of microseconds (its invocations become coroutines), one without them a plain SIMD loop.
// The exp-sum, needed only for a log-probability, is skipped unless P.want_logprob is set; the
// max and its id are exact either way, so greedy picks the same id.

struct Params {  // shared with sample.wgsl
  n_vocab: u32,
  temperature: f32,
  top_p: f32,
  rng_len: u32,
  want_logprob: u32,
}

@group(0) @binding(0) var<storage, read> L: array<f32>;
@group(0) @binding(1) var<storage, read_write> PART: array<vec4<u32>>;  // (max bits, id, sum bits, 0)
@group(0) @binding(2) var<uniform> P: Params;

const WG: u32 = 256u;
const PARTS: u32 = {{GROUPS}}u * WG;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  // Ids only grow along a thread's share, so `>` keeps the lowest id of the thread's maximum.
  var bv = -3.4e38;
  var bi = 0xFFFFFFFFu;
  var z = 0.0;
  if (P.want_logprob != 0u) {
    // Online log-sum-exp: rescale the running sum whenever the maximum moves.
    for (var i = t; i < P.n_vocab; i += PARTS) {
      let v = L[i];
      if (v > bv) { z = z * exp(bv - v) + 1.0; bv = v; bi = i; } else { z += exp(v - bv); }
    }
  } else {
    for (var i = t; i < P.n_vocab; i += PARTS) {
      let v = L[i];
      if (v > bv) { bv = v; bi = i; }
    }
  }
  PART[t] = vec4<u32>(bitcast<u32>(bv), bi, bitcast<u32>(z), 0u);
}
