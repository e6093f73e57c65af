// The decode path's dot of one 32-element chunk with its activations `x` (eight quads), for
// formats without a specialised one (Q8_0 and Q4_0 scale once per block instead): dequantize,
// then multiply-add.
fn chunk_dot(rb: u32, c: u32, x: array<vec4<f32>, 8>, K: u32) -> f32 {
  let w = load_chunk(rb, c, K);
  var s = 0.0;
  for (var j = 0u; j < 8u; j++) {
    for (var e = 0u; e < 4u; e++) { s += w[4u * j + e] * x[j][e]; }
  }
  return s;
}
