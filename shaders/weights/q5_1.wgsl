// Q5_1 (quant.ts ROW_PLANES): K/2 nibble bytes (block c = quad c), a word of fifth bits per
// block, then a (d, m) pair of halves per block; value = d * q + m.
fn q5_high(rb: u32, c: u32, K: u32) -> u32 {
  return row_word(rb, K / 8u + c);
}

fn q5_1_dm(rb: u32, c: u32, K: u32) -> vec2<f32> {
  return unpack2x16float(row_word(rb, 5u * K / 32u + c));
}

fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  let dm = q5_1_dm(rb, c, K);
  return scaled_bytes(q5_words(row_quad(rb, c), q5_high(rb, c, K)), dm.x, 0.0, dm.y);
}
