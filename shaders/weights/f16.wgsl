// F16 weights (2 bytes each; odd row lengths leave rows half-word aligned).
fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let n = min(32u, K - c * 32u);
  for (var i = 0u; i < n; i++) { o[i] = w_f16(rb + 2u * (c * 32u + i)); }
  return o;
}
