// Q4_K: super-block { f16 d; f16 dmin; u8 scales[12]; u8 qs[128]; } = 144 bytes (nine quads) of
// 256 elements, 8 sub-blocks of 32 with 6-bit scales and mins (k_scales.wgsl). Chunk c is
// sub-block c % 8 of block c / 8: read as the block's header quad and the two quads of its quants.
fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let q0 = (c >> 3u) * 9u;  // the block's first quad within the row
  let s = c & 7u;
  let sm = k_scale_min(row_quad(rb, q0), s);
  // sub-blocks 2i and 2i + 1 share 32 bytes of quants (quads 1 + 2i, 2 + 2i): low and high nibbles
  let qs = q0 + 1u + 2u * (s >> 1u);
  let shift = (s & 1u) * 4u;
  for (var half = 0u; half < 2u; half++) {
    let q = row_quad(rb, qs + half);
    for (var j = 0u; j < 4u; j++) {
      let w = q[j] >> shift;
      for (var k = 0u; k < 4u; k++) { o[16u * half + 4u * j + k] = sm.x * f32((w >> (8u * k)) & 15u) - sm.y; }
    }
  }
  return o;
}
