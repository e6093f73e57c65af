// Integer dot of block c (row layout as in q8_0.wgsl) with a Q8_0 activation block at XQ[xb..xb+10).
fn dot_q8(rb: u32, c: u32, xb: u32, K: u32) -> f32 {
  let a = (rb >> 2u) + 8u * c;
  var sumi = 0i;
  for (var j = 0u; j < 8u; j++) { sumi += dot4I8Packed(W[a + j], XQ[xb + j]); }
  return f32(sumi) * (w_f16(rb + K + 2u * c) * bitcast<f32>(XQ[xb + 8u]));
}
