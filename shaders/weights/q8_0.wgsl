// Q8_0: block { f16 d; i8 qs[32]; } = 34 bytes, one block per chunk.
fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let off = rb + c * 34u;
  let d = w_f16(off);
  for (var j = 0u; j < 8u; j++) {
    let w = w_u32(off + 2u + 4u * j);
    for (var k = 0u; k < 4u; k++) { o[4u * j + k] = d * sbyte(w, k); }
  }
  return o;
}
