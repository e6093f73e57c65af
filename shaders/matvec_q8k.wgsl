// Matrix-vector products of K-quant weights on Q8_K activation blocks (quantize_q8k.wgsl's XKB),
// rounded as llama.cpp's x86 kernel for the format rounds them: each format's piece
// (weights/*_dot.wgsl for the K-quants) defines `kq_row_dot`, a row against a token's blocks in
// that kernel's integer sums and float order; `in_four` says the token is one of the rows
// llama.cpp's batch takes in fours (step.wgsl), for the kernels whose 4-row form rounds otherwise.
// One thread per (row, token).
// MODE 0 stores, 1 adds into Y (the residual add), 2 runs the gate and up rows (row, row + N)
// and stores silu(gate) * up with ggml's vectorized silu.

struct Params {
  K: u32,
  N: u32,
  row_bytes: u32,
  x_stride: u32,   // unused: XKB rows are K / 256 blocks of Q8K_BLOCK_WORDS words
  y_stride: u32,
  y_off: u32,
  groups_x: u32,   // unused: rows are flattened over the grid's x and y (num_workgroups)
  rows_only: u32,  // 1: the step's sampled rows (the output head), else all its tokens
}

// (W, binding 0: bytes.wgsl)
@group(0) @binding(1) var<storage, read> XKB: array<u32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read> S: Step;
@group(0) @binding(5) var<uniform> P: Params;

const WG: u32 = 64u;
const Q8K_BLOCK_WORDS: u32 = 65u;
const MODE: u32 = {{MODE}}u;
const HAS_BIAS: bool = {{HAS_BIAS}};

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>) {
  exact_init();
  let row = (wg.y * ng.x + wg.x) * WG + li;
  let t = wg.z;
  let M = select(S.n_tokens, S.n_rows, P.rows_only == 1u);
  if (row >= P.N || t >= M) { return; }
  let nb = P.K / 256u;
  let xb = t * nb * Q8K_BLOCK_WORDS;
  // (the output head's rows are one per sequence: llama.cpp's one-row kernels)
  let in_four = P.rows_only == 0u && (S.tokens[t].fed & 2u) != 0u;
  var v = kq_row_dot(row_base(row, P.row_bytes), xb, nb, in_four);
  if (HAS_BIAS) { v = v + BIAS[row]; }
  let yi = t * P.y_stride + P.y_off + row;
  if (MODE == 0u) { Y[yi] = v; }
  if (MODE == 1u) { Y[yi] = v + Y[yi]; }
  if (MODE == 2u) {
    let up = kq_row_dot(row_base(row + P.N, P.row_bytes), xb, nb, in_four);
    Y[yi] = silu_ggml(v) * up;
  }
}
