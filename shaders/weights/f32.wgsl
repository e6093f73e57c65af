// F32 weights: chunk c of a row is elements [32c, 32c + 32), zero past the row's end.
fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  // Fixed trip count so the chunk stays in registers; elements past the row read as 0.
  for (var i = 0u; i < 32u; i++) {
    let e = c * 32u + i;
    o[i] = select(0.0, bitcast<f32>(row_word(rb, e)), e < K);
  }
  return o;
}
