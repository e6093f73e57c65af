// RMSNorm over groups of `n` floats: Y = X * (1 / sqrt(mean(X^2) + eps)) * weight, rounded as
// llama.cpp's CPU kernel rounds it: the squares (each rounded to f32) summed in double precision
// (here an exact pair sum), the mean rounded to f32, then (x * scale) * w. One workgroup per
// (group, token). Groups let the same kernel normalize whole rows (n = n_embd, 1 group) or each
// head of q and k in place (qwen3). The kernel host picks SRC = X (out of place) or Y (in place).
// With Q8_OUT the normalized row is also quantized to Q8_0 blocks into XQ (q8_block.wgsl) for
// the integer-dot products that read it, which saves them a quantize dispatch.

// (Params, bindings and the shared steps: rmsnorm_common.wgsl)

const WG: u32 = 64u;

var<workgroup> partial: array<vec2<f32>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  exact_init();
  let rows = norm_rows(wg);
  let src = rows.x;
  let dst = rows.y;
  let t_out = rows.z;
  partial[li] = sum_squares(src, li, WG);
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s) { partial[li] = pair_add(partial[li], partial[li + s]); }
    workgroupBarrier();
  }
  let scale = norm_scale(partial[0]);
  workgroupBarrier();
  if (Q8_OUT) {
    // a thread per block of 32 (n is a multiple of 32 here): the block's values, then its Q8_0
    let nb = P.n / 32u;
    for (var b = li; b < nb; b += WG) {
      var v: array<f32, 32>;
      for (var i = 0u; i < 32u; i++) {
        let e = b * 32u + i;
        v[i] = opaque({{SRC}}[src + e] * scale) * NW[e];
        Y[dst + e] = v[i];
      }
      q8_block_store(v, (t_out * nb + b) * Q8_BLOCK_WORDS);
    }
  } else {
    for (var i = li; i < P.n; i += WG) { Y[dst + i] = opaque({{SRC}}[src + i] * scale) * NW[i]; }
  }
}
