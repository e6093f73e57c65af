// H = act(G) * U elementwise, for FFNs whose gate and up weights do not share one matrix
// (different formats, too large for one binding) or whose activation the matrix product does
// not fuse (GELU); otherwise matvec MODE 2 does this fused. ACT 0 is SiLU; 1 is GELU as
// llama.cpp's CPU geglu computes it: the gate rounded to f16 looked up in its table of f16
// results (GELU, the host's copy of it: gelu-table.ts), 0 below -10 and the identity above 10.
struct Params { n: u32, g_off: u32, u_off: u32, stride: u32 }

@group(0) @binding(0) var<storage, read> GU: array<f32>;
@group(0) @binding(1) var<storage, read_write> H: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
@group(0) @binding(3) var<storage, read> GELU: array<f32>;  // 65536 entries (a dummy for SiLU)

const ACT: u32 = {{ACT}}u;

/** The bits of a value that is a half (round_f16's result). */
fn f16_bits(h: f32) -> u32 {
  let b = bitcast<u32>(h);
  let sign = (b >> 16u) & 0x8000u;
  let a = abs(h);
  if (a < 6.103515625e-05) { return sign | u32(a * 16777216.0); }  // subnormal: a multiple of 2^-24
  return sign | ((((b >> 23u) & 0xFFu) - 112u) << 10u) | ((b >> 13u) & 0x3FFu);
}

fn gelu_table(x: f32) -> f32 {
  if (x <= -10.0) { return 0.0; }
  if (x >= 10.0) { return x; }
  return GELU[f16_bits(round_f16(x))];
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  exact_init();
  let i = gid.x;
  let t = gid.y;
  if (i >= P.n) { return; }
  let g = GU[t * P.stride + P.g_off + i];
  let u = GU[t * P.stride + P.u_off + i];
  if (ACT == 1u) {
    H[t * P.n + i] = gelu_table(g) * u;
  } else {
    H[t * P.n + i] = g / (1.0 + exp(-g)) * u;
  }
}
