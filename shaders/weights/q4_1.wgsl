// Q4_1 (quant.ts ROW_PLANES): K/2 nibble bytes (block c = quad c), then a (d, m) pair of halves
// per block; value = d * q + m.
fn q4_1_dm(rb: u32, c: u32, K: u32) -> vec2<f32> {
  return unpack2x16float(row_word(rb, K / 8u + c));
}

fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  let dm = q4_1_dm(rb, c, K);
  return scaled_bytes(nibble_words(row_quad(rb, c)), dm.x, 0.0, dm.y);
}
