// F32 weights: chunk c of a row is elements [32c, 32c + 32), eight quads, zero past the row's end.
fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  // Fixed trip counts so the chunk stays in registers; elements past the row read as 0.
  for (var j = 0u; j < 8u; j++) {
    let q = row_quad(rb, 8u * c + j);
    for (var k = 0u; k < 4u; k++) { o[4u * j + k] = select(0.0, bitcast<f32>(q[k]), 32u * c + 4u * j + k < K); }
  }
  return o;
}
