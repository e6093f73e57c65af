// Causal attention computed exactly as attention.wgsl computes it (llama.cpp's CPU flash
// attention: q rounded to f16, each score in its AVX-512 build's order, keys in order with a
// running max and sum, the V accumulator in f16), laid out for an adapter that runs on the CPU
// (GpuFeatures.cpuLanes): one SIMD group of L lanes per (head, token), its values exchanged by
// subgroup shuffles instead of workgroup memory and barriers. There a subgroup is one vector
// register: a shuffle is a register permute, while every load from workgroup memory or at an
// address all lanes share is a loop over the lanes, and each barrier switches between the
// workgroup's SIMD groups (stories15M decode attention in ~0.4x the time of attention.wgsl).
//
// Keys go L at a time, key c0 + i on lane i: the lanes compute their scores, then all follow
// the key-by-key chain (running max, sum) on shuffled values, each lane keeping the max before
// its own key, so the expf of every key runs on its lane; then the accumulator, head dimensions
// spread over the lanes in pairs (pair d = lane + L r: a 48-wide head is three pairs a lane,
// where quads would leave a quarter of the lanes idle), takes the keys in order. A page holds a
// multiple of L positions, so the L keys of a chunk are consecutive rows of one page: one
// page-table lookup per chunk.
{{ENABLE_F16}}
enable subgroups;

// (Params and bindings: attention_score.wgsl; head_dim is HD, the kernel is compiled per size)
alias VElem = {{KV_PAIR}};  // V read two elements per load

const L: u32 = 8u;                    // lanes: the workgroup is one SIMD group (subgroups >= 8)
const HD: u32 = {{HEAD_DIM}}u;        // a multiple of 4
const NQ: u32 = HD / 4u;              // quads of a head
const QR: u32 = (NQ + L - 1u) / L;    // quads of q per lane
const NPAIR: u32 = HD / 2u;           // pairs of a head
const PR: u32 = (NPAIR + L - 1u) / L; // pairs of the accumulator per lane
const NO_MAX: f32 = -3.0e38;

/** Elements 2i, 2i + 1 of a cache. */
fn kv_pair(w: {{KV_PAIR}}) -> vec2<f32> { return {{KV_PAIR_UNPACK}}; }

// this lane's quads of q: lane + L r, the last one repeated past the head
var<private> q: array<vec4<f32>, QR>;

/** Quad i of q, from the lane holding it (score, attention_score.wgsl). */
fn q_quad(i: u32) -> vec4<f32> {
  return subgroupShuffle(q[i / L], i % L);
}

@compute @workgroup_size(L)
fn main(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  exact_init();
  let h = wg.x;
  let t = wg.y;
  let tok = S.tokens[t];
  let n = tok.pos + 1u;  // causal: positions 0..pos of its own sequence
  let kvo = (h / (P.n_head / P.n_head_kv)) * HD;
  for (var r = 0u; r < QR; r++) {
    let b = t * P.qkv_stride + h * HD + 4u * min(lane + L * r, NQ - 1u);
    let qs = P.q_scale;
    q[r] = vec4<f32>(round_f16(QKV[b] * qs), round_f16(QKV[b + 1u] * qs), round_f16(QKV[b + 2u] * qs), round_f16(QKV[b + 3u] * qs));
  }
  // and its pairs of the accumulator, likewise
  var dp: array<u32, PR>;
  for (var r = 0u; r < PR; r++) { dp[r] = min(lane + L * r, NPAIR - 1u); }

  var m = NO_MAX;
  var sum = 0.0;
  var acc: array<vec2<f32>, PR>;
  // a sliding window starts mid-chunk: chunks stay page-aligned, its first keys are skipped
  let first = first_key(tok.pos);
  for (var c0 = first - first % L; c0 < n; c0 += L) {
    let cn = min(L, n - c0);
    let i0 = select(0u, first - c0, first > c0);
    let row0 = kv_row(tok.slot, c0);  // the chunk's first key; the others follow it in its page
    // lanes past the last key score it again; their values are never read
    let s = scaled_score(score((row0 + min(lane, cn - 1u)) * P.kv_dim + kvo, HD));
    var prior = 0.0;
    for (var i = i0; i < cn; i++) {
      prior = select(prior, m, i == lane);
      m = max(m, subgroupShuffle(s, i));
    }
    var ms = 1.0;
    var vs = 1.0;
    if (s > prior) { ms = expf_libc(prior - s); } else { vs = expf_libc(s - prior); }
    let vsplit = split12(vs);
    for (var i = i0; i < cn; i++) {
      let kms = subgroupShuffle(ms, i);
      let kvs = subgroupShuffle(vs, i);
      let ksplit = subgroupShuffle(vsplit, i);
      sum = opaque(sum * kms) + kvs;
      let vp = ((row0 + i) * P.kv_dim + kvo) / 2u;
      if (kms != 1.0) {
        for (var r = 0u; r < PR; r++) {
          for (var e = 0u; e < 2u; e++) { acc[r][e] = round_f16(acc[r][e] * kms); }
        }
      }
      for (var r = 0u; r < PR; r++) {
        let v = kv_pair(VC[vp + dp[r]]);
        for (var e = 0u; e < 2u; e++) { acc[r][e] = round_f16(fma_half(v[e], kvs, ksplit, acc[r][e])); }
      }
    }
  }
  let inv = 1.0 / sum;
  for (var r = 0u; r < PR; r++) {
    if (lane + L * r < NPAIR) {
      let o = t * P.out_stride + h * HD + 2u * dp[r];
      for (var e = 0u; e < 2u; e++) { O[o + e] = acc[r][e] * inv; }
    }
  }
}
