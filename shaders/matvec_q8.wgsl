// Matvec on Q8_0-quantized activations (see quantize_q8.wgsl) with integer dot products, for
// weight formats whose llama.cpp kernels do the same (Q8_0, Q4_0). The format's `dot_q8`
// returns one 32-element block's contribution. Same parameters, modes and tiling as matvec.wgsl.

struct Params {
  K: u32,
  N: u32,
  row_bytes: u32,
  x_stride: u32,   // unused: XQ rows are K / 32 blocks of 10 words
  y_stride: u32,
  y_off: u32,
  groups_x: u32,
  last_only: u32,
}

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> XQ: array<u32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read> S: array<u32>;
@group(0) @binding(5) var<uniform> P: Params;

const TPR: u32 = {{TPR}}u;
const RPW: u32 = {{RPW}}u;
const TT: u32 = {{TT}}u;
const MODE: u32 = {{MODE}}u;
const HAS_BIAS: bool = {{HAS_BIAS}};
const NACC: u32 = select(1u, 2u, MODE == 2u);

var<workgroup> partial: array<f32, TPR * RPW * TT * NACC>;

fn silu(x: f32) -> f32 { return x / (1.0 + exp(-x)); }

@compute @workgroup_size(TPR * RPW)
fn main(@builtin(local_invocation_index) li: u32,
        @builtin(workgroup_id) wg: vec3<u32>) {
  let lane = li % TPR;
  let rl = li / TPR;
  let row = (wg.y * P.groups_x + wg.x) * RPW + rl;
  let M = select(S[1], 1u, P.last_only == 1u);
  let t0 = wg.z * TT;
  let xt0 = select(0u, S[1] - 1u, P.last_only == 1u);
  let nb = P.K / 32u;

  var acc: array<f32, TT>;
  var acc2: array<f32, TT>;
  if (row < P.N) {
    for (var c = lane; c < nb; c += TPR) {
      for (var t = 0u; t < TT; t++) {
        if (t0 + t < M) {
          let xb = ((xt0 + t0 + t) * nb + c) * 10u;
          acc[t] += dot_q8(row * P.row_bytes, c, xb, P.K);
          if (MODE == 2u) { acc2[t] += dot_q8((row + P.N) * P.row_bytes, c, xb, P.K); }
        }
      }
    }
  }
  for (var t = 0u; t < TT; t++) {
    partial[((rl * TT + t) * NACC) * TPR + lane] = acc[t];
    if (MODE == 2u) { partial[((rl * TT + t) * NACC + 1u) * TPR + lane] = acc2[t]; }
  }
  workgroupBarrier();
  // Each lane finishes tokens lane, lane + TPR, ... of its row.
  for (var t = lane; t < TT; t += TPR) {
    if (row < P.N && t0 + t < M) {
      var s = 0.0;
      var s2 = 0.0;
      for (var i = 0u; i < TPR; i++) {
        s += partial[((rl * TT + t) * NACC) * TPR + i];
        if (MODE == 2u) { s2 += partial[((rl * TT + t) * NACC + 1u) * TPR + i]; }
      }
      if (HAS_BIAS) { s += BIAS[row]; }
      let yi = (t0 + t) * P.y_stride + P.y_off + row;
      if (MODE == 0u) { Y[yi] = s; }
      if (MODE == 1u) { Y[yi] = Y[yi] + s; }
      if (MODE == 2u) { Y[yi] = silu(s) * s2; }
    }
  }

}
