// Q8_0 weights (row layout as in q8_0.wgsl) against a Q8_0 activation block at XQ[xb..xb+10):
// the integer sums of the block's eight runs of four products (elements 4j..4j+3), as one
// dot4 each (bytes.wgsl), and the weight block's scale.
fn dot_lanes(rb: u32, c: u32, xb: u32) -> array<i32, 8> {
  let a = (rb >> 2u) + 8u * c;
  var l: array<i32, 8>;
  for (var j = 0u; j < 8u; j++) { l[j] = dot4(W[a + j], XQ[xb + j]); }
  return l;
}

fn dot_scale(rb: u32, c: u32, K: u32) -> f32 {
  return w_f16(rb + K + 2u * c);
}
