// Q3_K: super-block { u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d; } = 110 bytes of 256
// elements, 16 sub-blocks of 16 with signed 6-bit scales (4 low bits in scales[0..7]'s nibbles,
// 2 high in scales[8..11]). Chunk c is elements 32s .. 32s + 31 of block c / 8 (s = c % 8):
// the bit pair s % 4 of qs[32 (s / 4) + l], minus 4 where bit s of hmask[l] is clear. Blocks
// are off word boundaries (110 bytes): read through row_u32's funnel shift.
fn q3_byte(rb: u32, off: u32) -> u32 {
  return row_u32(rb, off) & 0xFFu;
}

/** Scale i (0..15) of the block at byte `off`, times d. */
fn q3_scale(rb: u32, off: u32, i: u32, d: f32) -> f32 {
  var low: u32;
  if (i < 8u) { low = q3_byte(rb, off + 96u + i) & 15u; } else { low = q3_byte(rb, off + 88u + i) >> 4u; }
  let high = (q3_byte(rb, off + 104u + (i & 3u)) >> (2u * (i >> 2u))) & 3u;
  return d * f32(i32(low | (high << 4u)) - 32);
}

fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let off = (c >> 3u) * 110u;
  let s = c & 7u;
  let d = row_f16(rb, off + 108u);
  let s0 = q3_scale(rb, off, 2u * s, d);
  let s1 = q3_scale(rb, off, 2u * s + 1u, d);
  let qs = off + 32u + 32u * (s >> 2u);
  let shift = 2u * (s & 3u);
  for (var w = 0u; w < 8u; w++) {
    let qw = row_u32(rb, qs + 4u * w) >> shift;
    let hw = row_u32(rb, off + 4u * w) >> s;
    let sc = select(s1, s0, w < 4u);
    for (var k = 0u; k < 4u; k++) {
      let q = i32((qw >> (8u * k)) & 3u) - select(4, 0, ((hw >> (8u * k)) & 1u) != 0u);
      o[4u * w + k] = sc * f32(q);
    }
  }
  return o;
}
