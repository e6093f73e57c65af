// Constrained decoding: for each sampled row whose grammar mask was uploaded (SampleRow.masked),
// sets the logit of every id the grammar forbids (bit clear in the row's MASK words) to the
// lowest finite f32, in place, before the sampler runs. The sampler then never picks a masked id
// (argmax, nucleus and draw alike) and their exp() underflows to 0 in the log-sum-exp.

struct Params {
  n_vocab: u32,
  words: u32,  // mask words per row
}

@group(0) @binding(0) var<storage, read_write> LOGITS: array<f32>;
@group(0) @binding(1) var<storage, read> MASK: array<u32>;
@group(0) @binding(2) var<uniform> P: Params;
@group(0) @binding(3) var<storage, read> S: Step;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x;
  let r = g.y;
  if (i >= P.n_vocab || S.rows[r].masked == 0u) { return; }
  if (((MASK[r * P.words + (i >> 5u)] >> (i & 31u)) & 1u) == 0u) { LOGITS[r * P.n_vocab + i] = -3.4e38; }
}
