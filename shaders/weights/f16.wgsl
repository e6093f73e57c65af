// F16 weights (2 bytes each; odd row lengths leave rows half-word aligned).
fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  // Fixed trip count so the chunk stays in registers; elements past the row read as 0.
  for (var i = 0u; i < 32u; i++) {
    let e = c * 32u + i;
    o[i] = select(0.0, row_f16(rb, 2u * e), e < K);
  }
  return o;
}
