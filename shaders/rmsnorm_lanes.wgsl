// RMSNorm computed as rmsnorm.wgsl computes it (the squares' double-precision sum as an exact
// pair sum, the mean rounded once, (x * scale) * w, optionally the Q8_0 blocks of the result),
// laid out for an adapter that runs on the CPU (GpuFeatures.cpuLanes): one SIMD group of L lanes
// per (group, token), the lanes' partial sums combined by shuffles instead of a workgroup tree
// with a barrier per level (stories15M: 13 norms a decode step, each a few thousand elements of
// work behind eight barriers). With Q8_OUT each block of 32 is quantized by the lanes together,
// four values a lane: its word of the block, the block's max by a subgroup max.
enable subgroups;

// (Params, bindings and the shared steps: rmsnorm_common.wgsl)
const L: u32 = 8u;  // lanes: the workgroup is one SIMD group (subgroups >= 8)

@compute @workgroup_size(L)
fn main(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  exact_init();
  let rows = norm_rows(wg);
  let src = rows.x;
  let dst = rows.y;
  let t_out = rows.z;
  var ss = sum_squares(src, lane, L);
  for (var m = L / 2u; m > 0u; m = m >> 1u) { ss = pair_add(ss, subgroupShuffleXor(ss, m)); }
  let scale = norm_scale(ss);
  if (Q8_OUT) {
    // block b: elements 4 lane .. 4 lane + 3 on each lane, its word of the block (q8_block.wgsl's
    // layout and roundings; n is a multiple of 32 here)
    let nb = P.n / 32u;
    for (var b = 0u; b < nb; b++) {
      let e = b * 32u + 4u * lane;
      var v: vec4<f32>;
      for (var k = 0u; k < 4u; k++) {
        v[k] = opaque({{SRC}}[src + e + k] * scale) * NW[e + k];
        Y[dst + e + k] = v[k];
      }
      let a = abs(v);
      let amax = subgroupMax(max(max(a.x, a.y), max(a.z, a.w)));
      let id = select(0.0, 127.0 / amax, amax != 0.0);
      var w = 0u;
      var sum = 0i;
      for (var k = 0u; k < 4u; k++) {
        let q = i32(round(v[k] * id));
        sum += q;
        w = w | ((bitcast<u32>(q) & 0xFFu) << (8u * k));
      }
      sum = subgroupAdd(sum);
      let o = (t_out * nb + b) * Q8_BLOCK_WORDS;
      XQ[o + lane] = w;
      let d = amax / 127.0;
      if (lane == 0u) {
        XQ[o + 8u] = bitcast<u32>(round_f16(d));
        XQ[o + 9u] = bitcast<u32>(round_f16(d * f32(sum)));
      }
    }
  } else {
    for (var i = lane; i < P.n; i += L) { Y[dst + i] = opaque({{SRC}}[src + i] * scale) * NW[i]; }
  }
}
