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

// Decode path: low nibbles are elements 0..15, high nibbles 16..31; (q - 8) folded in as
// sum(q x) - 8 sum(x), scaled once per block.
fn chunk_dot(rb: u32, c: u32, xb: u32, K: u32) -> f32 {
  let off = rb + c * 18u;
  let d = w_f16(off);
  var acc = 0.0;
  var xs = 0.0;
  for (var j = 0u; j < 4u; j++) {
    let w = w_u32(off + 2u + 4u * j);
    let lo = vec4<f32>(unpack4xU8(w & 0x0F0F0F0Fu));
    let hi = vec4<f32>(unpack4xU8((w >> 4u) & 0x0F0F0F0Fu));
    let x = xb + 4u * j;
    let xl = vec4<f32>(X[x], X[x + 1u], X[x + 2u], X[x + 3u]);
    let xh = vec4<f32>(X[x + 16u], X[x + 17u], X[x + 18u], X[x + 19u]);
    acc += dot(lo, xl) + dot(hi, xh);
    xs += dot(xl + xh, vec4<f32>(1.0));
  }
  return (acc - 8.0 * xs) * d;
}
