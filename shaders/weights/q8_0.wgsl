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

// Decode path: unpack four quants at a time and scale once per block (d * sum(q x), which
// differs from sum((d q) x) only by float rounding).
fn chunk_dot(rb: u32, c: u32, xb: u32, K: u32) -> f32 {
  let off = rb + c * 34u;
  let d = w_f16(off);
  let a = (off + 2u) >> 2u;
  let s = ((off + 2u) & 3u) * 8u;
  var lo = W[a];
  var acc = 0.0;
  for (var j = 0u; j < 8u; j++) {
    let hi = W[a + j + 1u];
    // funnel shift without a branch: (hi << 1) << (31 - s) is hi << (32 - s), and 0 for s = 0
    let w = (lo >> s) | ((hi << 1u) << (31u - s));
    let q = vec4<f32>(unpack4xI8(w));
    let x = xb + 4u * j;
    acc += dot(q, vec4<f32>(X[x], X[x + 1u], X[x + 2u], X[x + 3u]));
    lo = hi;
  }
  return acc * d;
}
