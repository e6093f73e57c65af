// Q4_0 weights (row layout as in q4_0.wgsl) against one Q8_0 activation block's eight words
// `xw` (XqWord), for each of a thread's RPT rows (interleaved as in q8_0_dot.wgsl): the integer
// sums of the block's eight runs of four products (runs 0..3: the low nibbles, elements
// 4j..4j+3; runs 4..7: the high nibbles, elements 16+4j..), and the block's scale.
// Nibbles become signed bytes q - 8 without borrows: (n | 0x80) - 8 stays >= 0x78 per byte,
// and flipping the top bit back gives n - 8 in two's complement.
fn signed_nibbles(w: u32) -> u32 {
  return (((w & 0x0F0F0F0Fu) | 0x80808080u) - 0x08080808u) ^ 0x80808080u;
}

fn dot_rows(rb: array<u32, RPT>, c: u32, xw: array<XqWord, 8>) -> array<array<i32, 8>, RPT> {
  var l: array<array<i32, 8>, RPT>;
  for (var j = 0u; j < 4u; j++) {
    for (var r = 0u; r < RPT; r++) {
      let w = row_word(rb[r], 4u * c + j);
      l[r][j] = xq_dot(signed_nibbles(w), xw[j]);
      l[r][4u + j] = xq_dot(signed_nibbles(w >> 4u), xw[4u + j]);
    }
  }
  return l;
}

fn dot_scale(rb: u32, c: u32, K: u32) -> f32 {
  return row_f16(rb, K / 2u + 2u * c);
}
