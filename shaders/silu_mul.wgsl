// H = silu(G) * U elementwise, for FFNs whose gate and up weights cannot share one matrix
// (different formats or too large for one binding); otherwise matvec MODE 2 does this fused.
struct Params { n: u32, g_off: u32, u_off: u32, stride: u32 }

@group(0) @binding(0) var<storage, read> GU: array<f32>;
@group(0) @binding(1) var<storage, read_write> H: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let t = gid.y;
  if (i >= P.n) { return; }
  let g = GU[t * P.stride + P.g_off + i];
  let u = GU[t * P.stride + P.u_off + i];
  H[t * P.n + i] = g / (1.0 + exp(-g)) * u;
}
