// Q4_0 weights (row layout as in q4_0.wgsl) for the integer-dot products (matvec_q8.wgsl): a
// row's block c, one quad (matvec_q8.wgsl `row_quad`), as eight words of four signed bytes q - 8
// (words 0..3: the low nibbles, elements 4j..4j+3; words 4..7: the high nibbles, elements
// 16+4j..); and the block's scale.
// Nibbles become signed bytes q - 8 without borrows: (n | 0x80) - 8 stays >= 0x78 per byte,
// and flipping the top bit back gives n - 8 in two's complement.
fn signed_nibbles(w: u32) -> u32 {
  return (((w & 0x0F0F0F0Fu) | 0x80808080u) - 0x08080808u) ^ 0x80808080u;
}

fn block_words(rb: u32, c: u32, K: u32) -> array<u32, 8> {
  let q = row_quad(rb, c);
  return array<u32, 8>(signed_nibbles(q.x), signed_nibbles(q.y), signed_nibbles(q.z), signed_nibbles(q.w),
                       signed_nibbles(q.x >> 4u), signed_nibbles(q.y >> 4u), signed_nibbles(q.z >> 4u), signed_nibbles(q.w >> 4u));
}

/** Where block c's f16 scale sits in a row: the scales follow the quants (K / 2 bytes). */
fn dot_scale_byte(c: u32, K: u32) -> u32 {
  return K / 2u + 2u * c;
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
