// BF16 weights: the top half of an f32.
fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let n = min(32u, K - c * 32u);
  for (var i = 0u; i < n; i++) { o[i] = bitcast<f32>(w_u16(rb + 2u * (c * 32u + i)) << 16u); }
  return o;
}
