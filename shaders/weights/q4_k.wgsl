// Q4_K: super-block { f16 d; f16 dmin; u8 scales[12]; u8 qs[128]; } = 144 bytes of 256 elements,
// 8 sub-blocks of 32 with 6-bit scales and mins. Chunk c is sub-block c % 8 of block c / 8.
fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let off = (c >> 3u) * 144u;  // the block's byte offset within the row
  let s = c & 7u;
  let d = row_f16(rb, off);
  let dmin = row_f16(rb, off + 2u);
  // scales[j] for j = s, s + 4, s - 4 (bytes 4..15 of the block)
  var sc: u32;
  var m: u32;
  if (s < 4u) {
    sc = ubyte(row_word(rb, (off + 4u + s) >> 2u), (off + 4u + s) & 3u) & 63u;
    m = ubyte(row_word(rb, (off + 8u + s) >> 2u), (off + 8u + s) & 3u) & 63u;
  } else {
    let b4 = ubyte(row_word(rb, (off + 8u + s) >> 2u), (off + 8u + s) & 3u);
    let bm4 = ubyte(row_word(rb, (off + s) >> 2u), (off + s) & 3u);
    let b0 = ubyte(row_word(rb, (off + 4u + s) >> 2u), (off + 4u + s) & 3u);
    sc = (b4 & 15u) | ((bm4 >> 6u) << 4u);
    m = (b4 >> 4u) | ((b0 >> 6u) << 4u);
  }
  let dl = d * f32(sc);
  let ml = dmin * f32(m);
  let qs = (off + 16u + 32u * (s >> 1u)) >> 2u;
  let shift = (s & 1u) * 4u;
  for (var j = 0u; j < 8u; j++) {
    let w = row_word(rb, qs + j) >> shift;
    for (var k = 0u; k < 4u; k++) { o[4u * j + k] = dl * f32((w >> (8u * k)) & 15u) - ml; }
  }
  return o;
}
