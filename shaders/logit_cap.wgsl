// The logits of each sampled row scaled, then soft-capped where the model says so, before the
// masks and the sampler: l -> cap * tanh(l * pre) (gemma2: pre = 1 / cap) or l * pre alone
// (cap 0: granite's division by its logit scale).
struct Params { n_vocab: u32, pre: f32, cap: f32 }

@group(0) @binding(0) var<storage, read_write> LOGITS: array<f32>;
@group(0) @binding(1) var<uniform> P: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= P.n_vocab) { return; }
  let at = gid.y * P.n_vocab + i;
  let x = LOGITS[at] * P.pre;
  // (clamped: tanh is 1 in f32 past 9, and some drivers' tanh overflows to NaN for large x)
  LOGITS[at] = select(x, P.cap * tanh(clamp(x, -15.0, 15.0)), P.cap != 0.0);
}
