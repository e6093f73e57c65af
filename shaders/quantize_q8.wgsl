// Activations to Q8_0 blocks (q8_block.wgsl), as llama.cpp quantizes the input of every Q8_0 /
// Q4_0 matrix product; our integer-dot matvec then reproduces its numbers. A thread per block.

struct Params {
  K: u32,        // floats per token (a multiple of 32)
  x_stride: u32,
}

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> XQ: array<u32>;
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  exact_init();
  let b = gid.x;
  let t = gid.y;
  let nb = P.K / 32u;
  if (b >= nb) { return; }
  var v: array<f32, 32>;
  for (var i = 0u; i < 32u; i++) { v[i] = X[t * P.x_stride + b * 32u + i]; }
  q8_block_store(v, (t * nb + b) * Q8_BLOCK_WORDS);
}
