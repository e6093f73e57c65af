// RMSNorm over groups of `n` floats: Y = X / sqrt(mean(X^2) + eps) * weight. One workgroup per
// (group, token). Groups let the same kernel normalize whole rows (n = n_embd, 1 group) or each
// head of q and k in place (qwen3). The kernel host picks SRC = X (out of place) or Y (in place).

struct Params {
  n: u32,
  group_stride: u32,
  x_stride: u32,
  y_stride: u32,
  eps: f32,
  last_only: u32,  // 1: normalize only the batch's last token, into row 0 of Y
  off: u32,        // first float of group 0 within a token's row
}

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<storage, read> NW: array<f32>;
@group(0) @binding(3) var<storage, read> S: array<u32>;
@group(0) @binding(4) var<uniform> P: Params;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32> {{SG_ARGS}}) {
  {{SG_INIT}}
  let t_in = select(wg.y, S[1] - 1u, P.last_only == 1u);
  let t_out = select(wg.y, 0u, P.last_only == 1u);
  let src = t_in * P.x_stride + P.off + wg.x * P.group_stride;
  let dst = t_out * P.y_stride + P.off + wg.x * P.group_stride;
  var ss = 0.0;
  for (var i = li; i < P.n; i += WG) { let v = {{SRC}}[src + i]; ss += v * v; }
  let total = wg_sum(ss, li);
  let scale = 1.0 / sqrt(total / f32(P.n) + P.eps);
  for (var i = li; i < P.n; i += WG) { Y[dst + i] = {{SRC}}[src + i] * scale * NW[i]; }
}
