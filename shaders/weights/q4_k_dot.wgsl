// Q4_K weights (row layout as in q4_k.wgsl) for the integer products on Q8_K blocks
// (matvec_q8k.wgsl), in the order of llama.cpp's x86 repacked kernel (ggml_gemv / ggml_gemm
// _q4_K_8x8_q8_K, which it runs for Q4_K matrices whose rows come in groups of 8): per
// 256-element block, the sub-blocks' integer dots times their 6-bit scales summed as an
// integer, their activation sums times the 6-bit mins likewise; then acc = fma(that sum,
// d_w * d_x, acc) and acc_min = fma(the mins' sum, dmin_w * d_x, acc_min) block after block;
// the row's value is acc - acc_min. Its 4-row form (ggml_gemm_q4_K_8x8_q8_K, AVX-512, which a
// batch's rows take in fours) makes those two multiply-adds per pair of sub-blocks instead.

fn kq_header(rb: u32, b: u32) -> vec4<u32> {
  return row_quad(rb, b * 9u);
}

/** Sub-block s's (scale, min) as the integers the header packs (k_scales.wgsl's layout). */
fn kq_scale_min(h: vec4<u32>, s: u32) -> vec2<i32> {
  if (s < 4u) {
    return vec2<i32>(i32(header_byte(h, 4u + s) & 63u), i32(header_byte(h, 8u + s) & 63u));
  }
  let b4 = header_byte(h, 8u + s);
  let bm4 = header_byte(h, s);
  let b0 = header_byte(h, 4u + s);
  return vec2<i32>(i32((b4 & 15u) | ((bm4 >> 6u) << 4u)), i32((b4 >> 4u) | ((b0 >> 6u) << 4u)));
}

fn kq_quants(rb: u32, b: u32, s: u32) -> array<u32, 8> {
  // sub-blocks 2i and 2i + 1 share 32 bytes (quads 1 + 2i, 2 + 2i): low and high nibbles
  let qs = b * 9u + 1u + 2u * (s >> 1u);
  let shift = (s & 1u) * 4u;
  var o: array<u32, 8>;
  for (var half = 0u; half < 2u; half++) {
    let q = row_quad(rb, qs + half);
    for (var j = 0u; j < 4u; j++) { o[4u * half + j] = (q[j] >> shift) & 0x0F0F0F0Fu; }
  }
  return o;
}

/** The row at rb against the Q8_K blocks from word xb (nb blocks). */
fn kq_row_dot(rb: u32, xb: u32, nb: u32, in_four: bool) -> f32 {
  var acc = 0.0;
  var acc_min = 0.0;
  for (var b = 0u; b < nb; b++) {
    let xo = xb + b * Q8K_BLOCK_WORDS;
    let dx = bitcast<f32>(XKB[xo]);
    let h = kq_header(rb, b);
    let dm = unpack2x16float(h.x);
    var isum = 0i;
    var imin = 0i;
    for (var s = 0u; s < 8u; s++) {
      let sm = kq_scale_min(h, s);
      let q = kq_quants(rb, b, s);
      var dot = 0i;
      var xs = 0i;
      for (var j = 0u; j < 8u; j++) {
        let xw = XKB[xo + 1u + 8u * s + j];
        dot += dot4(q[j], xw);
        xs += dot4(0x01010101u, xw);
      }
      isum += sm.x * dot;
      imin += sm.y * xs;
      if (in_four && (s & 1u) == 1u) {
        acc = fma_exact(f32(isum), opaque(dm.x * dx), acc);
        acc_min = fma_exact(f32(imin), opaque(dm.y * dx), acc_min);
        isum = 0i;
        imin = 0i;
      }
    }
    if (!in_four) {
      acc = fma_exact(f32(isum), opaque(dm.x * dx), acc);
      acc_min = fma_exact(f32(imin), opaque(dm.y * dx), acc_min);
    }
  }
  return opaque(acc - acc_min);  // (opaque: kept from being reassociated with a residual add)
}
