// F16 weights (2 bytes each; odd row lengths leave rows half-word aligned): chunk c of a row is
// elements [32c, 32c + 32), four quads.
fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  // Fixed trip counts so the chunk stays in registers; elements past the row read as 0.
  for (var j = 0u; j < 4u; j++) {
    let q = row_quad(rb, 4u * c + j);
    for (var k = 0u; k < 4u; k++) {
      let h = unpack2x16float(q[k]);
      let e = 32u * c + 8u * j + 2u * k;
      o[8u * j + 2u * k] = select(0.0, h.x, e < K);
      o[8u * j + 2u * k + 1u] = select(0.0, h.y, e + 1u < K);
    }
  }
  return o;
}
