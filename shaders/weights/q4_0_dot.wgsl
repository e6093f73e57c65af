// Q4_0 weights (row layout as in q4_0.wgsl) against a Q8_0 activation block at XQ[xb..xb+10):
// the integer sums of the block's eight runs of four products (runs 0..3: the low nibbles,
// elements 4j..4j+3; runs 4..7: the high nibbles, elements 16+4j..), and the block's scale.
// Nibbles become signed bytes q - 8 without borrows: (n | 0x80) - 8 stays >= 0x78 per byte,
// and flipping the top bit back gives n - 8 in two's complement.
fn signed_nibbles(w: u32) -> u32 {
  return (((w & 0x0F0F0F0Fu) | 0x80808080u) - 0x08080808u) ^ 0x80808080u;
}

fn dot_lanes(rb: u32, c: u32, xb: u32) -> array<i32, 8> {
  let a = (rb >> 2u) + 4u * c;
  var l: array<i32, 8>;
  for (var j = 0u; j < 4u; j++) {
    let w = W[a + j];
    l[j] = dot4(signed_nibbles(w), XQ[xb + j]);
    l[4u + j] = dot4(signed_nibbles(w >> 4u), XQ[xb + 4u + j]);
  }
  return l;
}

fn dot_scale(rb: u32, c: u32, K: u32) -> f32 {
  return w_f16(rb + K / 2u + 2u * c);
}
