// Q5_K: super-block { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]; } = 176 bytes
// (eleven quads) of 256 elements: Q4_K's sub-blocks, scales and nibbles (k_scales.wgsl), plus
// a fifth bit per element, bit s of qh[l] for element l of sub-block s. Chunk c is sub-block
// c % 8 of block c / 8.
fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let q0 = (c >> 3u) * 11u;  // the block's first quad within the row
  let s = c & 7u;
  let sm = k_scale_min(row_quad(rb, q0), s);
  let qs = q0 + 3u + 2u * (s >> 1u);
  let shift = (s & 1u) * 4u;
  for (var half = 0u; half < 2u; half++) {
    let q = row_quad(rb, qs + half);
    let h = row_quad(rb, q0 + 1u + half);  // qh[16 half .. 16 half + 15]
    for (var j = 0u; j < 4u; j++) {
      let w = q[j] >> shift;
      let hb = h[j] >> s;
      for (var k = 0u; k < 4u; k++) {
        let v = ((w >> (8u * k)) & 15u) | (((hb >> (8u * k)) & 1u) << 4u);
        o[16u * half + 4u * j + k] = sm.x * f32(v) - sm.y;
      }
    }
  }
  return o;
}
