// Integer dot of block c with a Q8_0 activation block: sum((q - 8) * x) = sum(q * x) - 8 sum(x).
fn dot_q8(rb: u32, c: u32, xb: u32) -> f32 {
  let off = rb + c * 18u;
  let dw = w_f16(off);
  var sumi = 0i;
  for (var j = 0u; j < 4u; j++) {
    let w = w_u32(off + 2u + 4u * j);
    sumi += dot4I8Packed(w & 0x0F0F0F0Fu, XQ[xb + j]);
    sumi += dot4I8Packed((w >> 4u) & 0x0F0F0F0Fu, XQ[xb + 4u + j]);
  }
  sumi -= 8i * bitcast<i32>(XQ[xb + 9u]);
  return f32(sumi) * (dw * bitcast<f32>(XQ[xb + 8u]));
}
