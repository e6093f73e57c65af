// Q6_K weights (row layout as in q6_k.wgsl: 210-byte blocks, read through row_u32) for the
// integer products on Q8_K blocks (matvec_q8k.wgsl), in the order of llama.cpp's x86
// ggml_vec_dot_q6_K_q8_K (its AVX2 code, which AVX-512 builds run too): eight int32 lanes per
// block, lane j taking elements 4j..4j+3 of every 32 (the 6-bit values unsigned, 0..63, times
// the activation, times the 16-element sub-block's signed scale), minus 32 times the scaled
// activation sums of sub-blocks 2j and 2j + 1 (the -32 offset, applied per lane that way); then
// lane = fma(d_x * d_w, that integer, lane) block after block, and the lanes summed as
// hsum_float_8 does: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).

/** The row at rb against the Q8_K blocks from word xb (nb blocks). */
fn kq_row_dot(rb: u32, xb: u32, nb: u32, in_four: bool) -> f32 {  // (no 4-row form on x86)
  var lanes: array<f32, 8>;
  for (var b = 0u; b < nb; b++) {
    let xo = xb + b * Q8K_BLOCK_WORDS;
    let off = b * 210u;
    let d = opaque(bitcast<f32>(XKB[xo]) * row_f16(rb, off + 208u));
    var sumi = array<i32, 8>(0, 0, 0, 0, 0, 0, 0, 0);  // (explicitly: naga keeps a bare var across iterations)
    // chunk c: half h, quarter q (q6_k.wgsl): elements 128h + 32q + l
    for (var c = 0u; c < 8u; c++) {
      let h = c >> 2u;
      let q = c & 3u;
      let scw = row_u32(rb, off + 192u + 8u * h + 2u * q);
      let s0 = i32(sbyte(scw, 0u));
      let s1 = i32(sbyte(scw, 1u));
      let ql = off + 64u * h + 32u * (q & 1u);
      let qh = off + 128u + 32u * h;
      let nsh = (q >> 1u) * 4u;
      let hsh = 2u * q;
      for (var j = 0u; j < 8u; j++) {
        let u6 = ((row_u32(rb, ql + 4u * j) >> nsh) & 0x0F0F0F0Fu) | (((row_u32(rb, qh + 4u * j) >> hsh) & 0x03030303u) << 4u);
        let xw = XKB[xo + 1u + 32u * h + 8u * q + j];
        sumi[j] += select(s1, s0, j < 4u) * dot4(u6, xw);
      }
    }
    for (var j = 0u; j < 8u; j++) {
      // sub-blocks 2j, 2j + 1: elements 32j .. 32j + 31, words 8j .. 8j + 7 of the block
      let scw = row_u32(rb, off + 192u + 2u * j);
      var sub = 0i;
      for (var k = 0u; k < 2u; k++) {
        var bsum = 0i;
        for (var w = 0u; w < 4u; w++) { bsum += dot4(0x01010101u, XKB[xo + 1u + 8u * j + 4u * k + w]); }
        sub += i32(sbyte(scw, k)) * bsum;
      }
      lanes[j] = fma_exact(d, f32(sumi[j] - 32 * sub), lanes[j]);
    }
  }
  return opaque(opaque(opaque(lanes[0] + lanes[4]) + opaque(lanes[2] + lanes[6])) + opaque(opaque(lanes[1] + lanes[5]) + opaque(lanes[3] + lanes[7])));
}
