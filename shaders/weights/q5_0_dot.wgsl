// Q5_0 weights (row layout as in q5_0.wgsl) for the integer-dot products (matvec_q8.wgsl): a
// row's block c as eight words of four signed bytes q - 16 (words 0..3: elements 0..15, as
// tinyBLAS and ggml_vec_dot_q5_0_q8_0 lay them out), and the block's scale.
fn block_words(rb: u32, c: u32, K: u32) -> array<u32, 8> {
  var o = q5_words(row_quad(rb, c), q5_high(rb, c, K));
  // bytes 0..31 to q - 16 without borrows, as q4_0_dot.wgsl's signed_nibbles
  for (var j = 0u; j < 8u; j++) { o[j] = ((o[j] | 0x80808080u) - 0x10101010u) ^ 0x80808080u; }
  return o;
}

fn dot_scale(rb: u32, c: u32, K: u32) -> f32 {
  return q5_0_scale(rb, c, K);
}

// Scales one by one (dot_scale), not a quad of eight.
const SCALE_QUADS: bool = false;
fn dot_scale_quad(rb: u32, g: u32, K: u32) -> vec4<u32> { return vec4<u32>(); }

const HAS_MIN: bool = false;
const WIDE_BLOCK_DOT: bool = false;
fn dot_min(rb: u32, c: u32, K: u32) -> f32 { return 0.0; }
