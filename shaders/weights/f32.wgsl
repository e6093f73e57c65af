// F32 weights: chunk c of a row is elements [32c, 32c + 32), zero past the row's end.
fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let base = rb >> 2u;
  let n = min(32u, K - c * 32u);
  for (var i = 0u; i < n; i++) { o[i] = bitcast<f32>(W[base + c * 32u + i]); }
  return o;
}
