// Q6_K: super-block { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d; } = 210 bytes of 256
// elements. Chunk c: half h = (c % 8) / 4 of block c / 8, quarter q = c % 4 of that half; its
// low 4 bits come from ql[64h + 32(q & 1) + l] (nibble q / 2), its high 2 bits from
// qh[32h + l] (bits 2q..2q+1), and scales[8h + 2q + l / 16] applies.
fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let off = (c >> 3u) * 210u;  // the block's byte offset within the row
  let h = (c >> 2u) & 1u;
  let q = c & 3u;
  let d = row_f16(rb, off + 208u);
  let scw = row_u32(rb, off + 192u + 8u * h + 2u * q);
  let s0 = d * sbyte(scw, 0u);
  let s1 = d * sbyte(scw, 1u);
  let ql = off + 64u * h + 32u * (q & 1u);
  let qh = off + 128u + 32u * h;
  let nsh = (q >> 1u) * 4u;
  let hsh = 2u * q;
  for (var j = 0u; j < 8u; j++) {
    let lw = row_u32(rb, ql + 4u * j) >> nsh;
    let hw = row_u32(rb, qh + 4u * j) >> hsh;
    let sc = select(s1, s0, j < 4u);
    for (var k = 0u; k < 4u; k++) {
      let v = ((lw >> (8u * k)) & 15u) | (((hw >> (8u * k)) & 3u) << 4u);
      o[4u * j + k] = sc * (f32(v) - 32.0);
    }
  }
  return o;
}
