// Integer dot of block c with a Q8_0 activation block at XQ[xb..xb+10).
fn dot_q8(rb: u32, c: u32, xb: u32) -> f32 {
  let off = rb + c * 34u;
  let dw = w_f16(off);
  // quants start at off + 2: word aligned in every other block
  let a = (off + 2u) >> 2u;
  let s = ((off + 2u) & 3u) * 8u;
  var sumi = 0i;
  var lo = W[a];
  for (var j = 0u; j < 8u; j++) {
    let hi = W[a + j + 1u];
    // funnel shift without a branch: (hi << 1) << (31 - s) is hi << (32 - s), and 0 for s = 0
    let w = (lo >> s) | ((hi << 1u) << (31u - s));
    sumi += dot4I8Packed(w, XQ[xb + j]);
    lo = hi;
  }
  return f32(sumi) * (dw * bitcast<f32>(XQ[xb + 8u]));
}
