// Constrained decoding: sets the logit of every id the grammar forbids (bit clear in MASK) to the
// lowest finite f32, in place, before the sampler runs. The sampler then never picks a masked id
// (argmax, nucleus and draw alike) and their exp() underflows to 0 in the log-sum-exp.

struct Params {
  n_vocab: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> L: array<f32>;
@group(0) @binding(1) var<storage, read> MASK: array<u32>;
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x;
  if (i >= P.n_vocab) { return; }
  if (((MASK[i >> 5u] >> (i & 31u)) & 1u) == 0u) { L[i] = -3.4e38; }
}
