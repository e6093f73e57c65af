// The 6-bit scales and mins of Q4_K and Q5_K blocks (12 bytes after the block's d and dmin),
// read from the block's header quad (bytes 0..15).

/** Byte b (0..15) of a block's header quad. */
fn header_byte(h: vec4<u32>, b: u32) -> u32 {
  return ubyte(h[b >> 2u], b & 3u);
}

/** Sub-block s's (scale, min) times the block's (d, dmin). */
fn k_scale_min(h: vec4<u32>, s: u32) -> vec2<f32> {
  let dd = unpack2x16float(h.x);  // d, dmin
  var sc: u32;
  var m: u32;
  if (s < 4u) {
    sc = header_byte(h, 4u + s) & 63u;
    m = header_byte(h, 8u + s) & 63u;
  } else {
    let b4 = header_byte(h, 8u + s);
    let bm4 = header_byte(h, s);
    let b0 = header_byte(h, 4u + s);
    sc = (b4 & 15u) | ((bm4 >> 6u) << 4u);
    m = (b4 >> 4u) | ((b0 >> 6u) << 4u);
  }
  return vec2<f32>(dd.x * f32(sc), dd.y * f32(m));
}
