// Q2_K: super-block { u8 scales[16]; u8 qs[64]; f16 d; f16 dmin; } = 84 bytes of 256 elements,
// 16 sub-blocks of 16 each with a 4-bit scale (low nibble) and min (high). Chunk c is elements
// 32s .. 32s + 31 of block c / 8 (s = c % 8): the bit pair s % 4 of qs[32 (s / 4) + l], with
// scales[2s] for l < 16 and scales[2s + 1] after. Blocks are word aligned (84 bytes).
fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let off = (c >> 3u) * 84u;
  let s = c & 7u;
  let dd = unpack2x16float(row_u32(rb, off + 80u));  // d, dmin
  let scw = row_u16(rb, off + 2u * s);
  let lo = vec2<f32>(dd.x * f32(scw & 15u), dd.y * f32((scw >> 4u) & 15u));
  let hi = vec2<f32>(dd.x * f32((scw >> 8u) & 15u), dd.y * f32(scw >> 12u));
  let qs = off + 16u + 32u * (s >> 2u);
  let shift = 2u * (s & 3u);
  for (var w = 0u; w < 8u; w++) {
    let qw = row_u32(rb, qs + 4u * w) >> shift;
    let sm = select(hi, lo, w < 4u);
    for (var k = 0u; k < 4u; k++) { o[4u * w + k] = sm.x * f32((qw >> (8u * k)) & 3u) - sm.y; }
  }
  return o;
}
