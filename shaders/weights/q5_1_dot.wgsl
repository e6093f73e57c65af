// Q5_1 weights (row layout as in q5_1.wgsl) for the integer-dot products on Q8_1 activations
// (matvec_q8.wgsl with HAS_MIN, as ggml_vec_dot_q5_1_q8_1): block c as eight words of the
// five-bit quants 0..31, its scale d and its min m.
fn block_words(rb: u32, c: u32, K: u32) -> array<u32, 8> {
  return q5_words(row_quad(rb, c), q5_high(rb, c, K));
}

fn dot_scale(rb: u32, c: u32, K: u32) -> f32 {
  return q5_1_dm(rb, c, K).x;
}

// Scales one by one (dot_scale), not a quad of eight.
const SCALE_QUADS: bool = false;
fn dot_scale_quad(rb: u32, g: u32, K: u32) -> vec4<u32> { return vec4<u32>(); }

const HAS_MIN: bool = true;
const WIDE_BLOCK_DOT: bool = false;
fn dot_min(rb: u32, c: u32, K: u32) -> f32 { return q5_1_dm(rb, c, K).y; }
