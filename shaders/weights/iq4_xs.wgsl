// IQ4_XS: super-block { f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128]; } = 136 bytes of 256
// elements, 8 sub-blocks of 32 with 6-bit scales minus 32 (4 low bits in scales_l, 2 high in
// scales_h) and IQ4_NL's levels. Chunk c is sub-block c % 8 of block c / 8: 16 bytes of qs,
// element l the low nibble of byte l, l + 16 the high one. Blocks are word aligned.
const IQ4_LEVELS = array<i32, 16>(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);

fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let off = (c >> 3u) * 136u;
  let s = c & 7u;
  let head = row_u32(rb, off);  // d, scales_h
  let ls = ((row_u32(rb, off + 4u) >> (8u * (s >> 1u) + 4u * (s & 1u))) & 15u) | (((head >> (16u + 2u * s)) & 3u) << 4u);
  let dl = unpack2x16float(head).x * f32(i32(ls) - 32);
  for (var j = 0u; j < 4u; j++) {
    let w = row_u32(rb, off + 8u + 16u * s + 4u * j);
    for (var k = 0u; k < 4u; k++) {
      let b = (w >> (8u * k)) & 0xFFu;
      o[4u * j + k] = dl * f32(IQ4_LEVELS[b & 15u]);
      o[16u + 4u * j + k] = dl * f32(IQ4_LEVELS[b >> 4u]);
    }
  }
  return o;
}
