// Q8_0 weights (row layout as in q8_0.wgsl) for the integer-dot products (matvec_q8.wgsl): a
// row's block c as eight words of four signed bytes (elements 4j..4j+3), two quads
// (matvec_q8.wgsl `row_quad`); and the block's scale.
fn block_words(rb: u32, c: u32, K: u32) -> array<u32, 8> {
  let a = row_quad(rb, 2u * c);
  let b = row_quad(rb, 2u * c + 1u);
  return array<u32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
}

/** Where block c's f16 scale sits in a row: the scales follow the quants (K bytes). */
fn dot_scale_byte(c: u32, K: u32) -> u32 {
  return K + 2u * c;
}

fn dot_scale(rb: u32, c: u32, K: u32) -> f32 {
  return row_f16(rb, dot_scale_byte(c, K));
}

// The scales of blocks 8g .. 8g + 7, two f16 a word: one quad (the quants' bytes are a
// multiple of 16, so block 8g's scale starts a quad).
const SCALE_QUADS: bool = true;
fn dot_scale_quad(rb: u32, g: u32, K: u32) -> vec4<u32> {
  return row_quad(rb, dot_scale_byte(8u * g, K) / 16u);
}

// No per-block min; each block's integer dot stays within fma_int's 2^16.
const HAS_MIN: bool = false;
const WIDE_BLOCK_DOT: bool = false;
fn dot_min(rb: u32, c: u32, K: u32) -> f32 { return 0.0; }
