// Q5_0 (quant.ts ROW_PLANES): K/2 nibble bytes (block c = quad c), then a word of fifth bits
// per block (bit j for element j), then an f16 scale per block; value = d * (q - 16).
fn q5_high(rb: u32, c: u32, K: u32) -> u32 {
  return row_word(rb, K / 8u + c);
}

fn q5_0_scale(rb: u32, c: u32, K: u32) -> f32 {
  return row_f16(rb, 5u * K / 8u + 2u * c);
}

fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  let d = q5_0_scale(rb, c, K);
  return scaled_bytes(q5_words(row_quad(rb, c), q5_high(rb, c, K)), d, -16.0, 0.0);
}
