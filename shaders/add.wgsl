// Y += scale * X over n values per token (a residual add for paths where it cannot be folded
// into a matvec: a post-norm's output, granite's scaled sublayer outputs). One row per token.
struct Params { n: u32, scale: f32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= P.n) { return; }
  let at = gid.y * P.n + i;
  Y[at] = Y[at] + P.scale * X[at];
}
