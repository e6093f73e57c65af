// BF16 weights: the top half of an f32, two to a word; chunk c of a row is elements
// [32c, 32c + 32), four quads.
fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  // Fixed trip counts so the chunk stays in registers; elements past the row read as 0.
  for (var j = 0u; j < 4u; j++) {
    let q = row_quad(rb, 4u * c + j);
    for (var k = 0u; k < 4u; k++) {
      let e = 32u * c + 8u * j + 2u * k;
      o[8u * j + 2u * k] = select(0.0, bitcast<f32>(q[k] << 16u), e < K);
      o[8u * j + 2u * k + 1u] = select(0.0, bitcast<f32>(q[k] & 0xFFFF0000u), e + 1u < K);
    }
  }
  return o;
}
