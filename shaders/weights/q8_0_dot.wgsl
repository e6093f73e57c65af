// Q8_0 weights (row layout as in q8_0.wgsl) against one Q8_0 activation block's eight words
// `xw` (lanes_*.wgsl XqWord): for each of a thread's RPT rows, the integer sums of the block's
// eight runs of four products (elements 4j..4j+3), as one integer dot each; and the weight
// block's scale.
// The rows' words are read interleaved: on lavapipe each per-thread load is a loop over the SIMD
// lanes that the compiler does not move code across, so interleaving is what overlaps them.
fn dot_rows(rb: array<u32, RPT>, c: u32, xw: array<XqWord, 8>) -> array<array<i32, 8>, RPT> {
  var l: array<array<i32, 8>, RPT>;
  for (var j = 0u; j < 8u; j++) {
    for (var r = 0u; r < RPT; r++) { l[r][j] = xq_dot(row_word(rb[r], 8u * c + j), xw[j]); }
  }
  return l;
}

fn dot_scale(rb: u32, c: u32, K: u32) -> f32 {
  return row_f16(rb, K + 2u * c);
}
