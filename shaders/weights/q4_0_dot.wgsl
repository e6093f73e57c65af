// Integer dot of block c (row layout as in q4_0.wgsl) with a Q8_0 activation block:
// sum((q - 8) * x) = sum(q * x) - 8 sum(x).
fn dot_q8(rb: u32, c: u32, xb: u32, K: u32) -> f32 {
  let a = (rb >> 2u) + 4u * c;
  var sumi = 0i;
  for (var j = 0u; j < 4u; j++) {
    let w = W[a + j];
    sumi += dot4I8Packed(w & 0x0F0F0F0Fu, XQ[xb + j]);
    sumi += dot4I8Packed((w >> 4u) & 0x0F0F0F0Fu, XQ[xb + 4u + j]);
  }
  sumi -= 8i * bitcast<i32>(XQ[xb + 9u]);
  return f32(sumi) * (w_f16(rb + K / 2u + 2u * c) * bitcast<f32>(XQ[xb + 8u]));
}
