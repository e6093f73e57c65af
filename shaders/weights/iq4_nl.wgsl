// IQ4_NL (quant.ts ROW_PLANES, as Q4_0): K/2 nibble bytes (block c = quad c), then K/32 f16
// scales; value = d * IQ4_LEVELS[q], sixteen non-linear levels.
const IQ4_LEVELS = array<i32, 16>(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);

fn iq4_nl_scale(rb: u32, c: u32, K: u32) -> f32 {
  return row_f16(rb, K / 2u + 2u * c);
}

fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let d = iq4_nl_scale(rb, c, K);
  let q = row_quad(rb, c);
  for (var j = 0u; j < 4u; j++) {
    for (var k = 0u; k < 4u; k++) {
      let b = (q[j] >> (8u * k)) & 0xFFu;
      o[4u * j + k] = d * f32(IQ4_LEVELS[b & 15u]);
      o[16u + 4u * j + k] = d * f32(IQ4_LEVELS[b >> 4u]);
    }
  }
  return o;
}
