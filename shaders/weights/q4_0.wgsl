// Q4_0: block { f16 d; u8 qs[16]; } = 18 bytes; element j is the low nibble of qs[j], j + 16 the high.
fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let off = rb + c * 18u;
  let d = w_f16(off);
  for (var j = 0u; j < 4u; j++) {
    let w = w_u32(off + 2u + 4u * j);
    for (var k = 0u; k < 4u; k++) {
      let b = ubyte(w, k);
      o[4u * j + k] = d * (f32(b & 15u) - 8.0);
      o[16u + 4u * j + k] = d * (f32(b >> 4u) - 8.0);
    }
  }
  return o;
}
