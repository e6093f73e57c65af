// Matrix-vector products on Q8_0-quantized activations (quantize_q8.wgsl) with integer dots,
// rounded exactly as llama.cpp's CPU kernels round them, for the weight formats whose kernels
// work that way (Q8_0, Q4_0; `block_words` per format gives a row's block as eight words of
// four signed bytes, the runs of four products llama.cpp sums as integers, and `dot_scale` its
// scale, or where the format keeps a row's scales contiguous, `dot_scale_quad` eight blocks'
// at once: SCALE_QUADS). ORDER picks the
// kernel reproduced:
//   0: ggml_vec_dot_q8_0_q8_0 and tinyBLAS (AVX2 / AVX-512 builds): eight f32 lanes, lane j
//      doing lane = fma(d_w * d_x, sum of products 4j..4j+3, lane) block after block, then
//      ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)).
//   1: the repacked Q4_0 kernels (matrices with rows in groups of 8): one accumulator,
//      acc = fma(the block's integer dot, d_w * d_x, acc) block after block.
// Decode and prefill round alike there, so one thread computes RPT rows (RPW apart) for up to TT
// tokens: the rows share each activation word it loads (on lavapipe a storage load with the same
// address for every thread is still a per-lane loop: with XQ in a storage buffer two rows per
// thread decode 21% faster; forward.ts Q8_TILING).
// Formats with a per-block min (Q4_1, Q5_1: HAS_MIN, their vec_dot on Q8_1 activations) also
// sum m_w * s_x block after block in one scalar fused multiply-add chain beside the lanes and
// add it to the lanes' total, as ggml_vec_dot_q4_1_q8_1 does.
// NATIVE_FMA uses the device's fma() as it is (fused on GPUs, a multiply and an add on lavapipe)
// instead of the exact emulation: for the output head, whose logits only feed the sampler, where
// an unfused sum moves a logit by ~1e-6 and the emulation would triple the cost of the largest
// matrix.
// MODE 0 stores, 1 adds into Y (the residual add), 2 runs the gate and up rows (row, row + N)
// and stores silu(gate) * up with ggml's vectorized silu.
// XQ_FROM declares the activations (binding 1) and `xq_word`: a storage array, or for decode a
// uniform buffer (kernels.ts XQ_FROM says why). Every thread reads the same activation block, so
// a SIMD group loads its eight words once, a word per lane, where subgroups allow (lanes_*.wgsl);
// rows past the end are computed (from the last row) and not stored, so that no thread leaves
// its group early.

struct Params {
  K: u32,
  N: u32,
  row_bytes: u32,
  x_stride: u32,   // unused: XQ rows are K / 32 blocks of Q8_BLOCK_WORDS words
  y_stride: u32,
  y_off: u32,
  groups_x: u32,   // unused: rows are flattened over the grid's x and y (num_workgroups)
  rows_only: u32,  // 1: the step's sampled rows (the output head), else all its tokens
}

// (W, binding 0: bytes.wgsl; these formats' rows are read a quad at a time)
{{XQ_FROM}}
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read> S: Step;
@group(0) @binding(5) var<uniform> P: Params;

const RPW: u32 = {{RPW}}u;
const RPT: u32 = {{RPT}}u;
const Q8_BLOCK_WORDS: u32 = {{Q8_BLOCK_WORDS}}u;  // q8_block.wgsl's layout
const TT: u32 = {{TT}}u;
const MODE: u32 = {{MODE}}u;
const ORDER: u32 = {{ORDER}}u;
const HAS_BIAS: bool = {{HAS_BIAS}};
const NATIVE_FMA: bool = {{NATIVE_FMA}};

/**
 * d * i + acc with the reproduced kernel's one rounding (or the device's own fma). fma_int
 * wants |i| <= 2^16: a Q8_0 run of four products (<= 4 * 128 * 127) or, with ORDER 1, a whole
 * Q4_0 block's (<= 32 * 8 * 127); ORDER 1 on Q8_0 weights runs only with NATIVE_FMA.
 */
fn madd(d: f32, ds: vec3<f32>, i: i32, acc: f32) -> f32 {
  if (NATIVE_FMA) { return fma(d, f32(i), acc); }
  if (WIDE_BLOCK_DOT && ORDER == 1u) { return fma_exact(d, f32(i), acc); }
  return fma_int(d, ds, i, acc);
}

/** m * s + acc, rounded once (the min chain of HAS_MIN formats). */
fn min_madd(m: f32, s: f32, acc: f32) -> f32 {
  if (NATIVE_FMA) { return fma(m, s, acc); }
  return fma_exact(m, s, acc);
}

/**
 * The eight lanes after one block: one row's weight words `w` against the activation words
 * `xw`, its integer dots made and multiplied in here (only this row's sums live, not a block
 * of sums for all RPT rows: on lavapipe the output head's loop touched the stack ~40% as often).
 * Deno's naga mistranslates a pointer into a nested array: by value.
 */
fn accumulate(acc: array<f32, 8>, d: f32, w: array<u32, 8>, xw: array<XqWord, 8>) -> array<f32, 8> {
  var a = acc;
  let ds = split8x3(d);
  if (ORDER == 0u) {
    var l: array<i32, 8>;
    for (var j = 0u; j < 8u; j++) { l[j] = xq_dot(w[j], xw[j]); }
    for (var j = 0u; j < 8u; j++) { a[j] = madd(d, ds, l[j], a[j]); }
    return a;
  }
  var isum = 0i;
  for (var j = 0u; j < 8u; j++) { isum += xq_dot(w[j], xw[j]); }
  a[0] = madd(d, ds, isum, a[0]);
  return a;
}

/**
 * Block c of the row at rb for one of a tile's tokens: loaded here when the tile is one token,
 * else the words the tile loaded once before its tokens (`held`).
 */
fn tile_words(rb: u32, c: u32, held: array<u32, 8>) -> array<u32, 8> {
  if (TT == 1u) { return block_words(rb, c, P.K); }
  return held;
}

/** The activation block at word xb: its eight words of four signed bytes. */
fn xq_block(xb: u32) -> array<XqWord, 8> {
  var o: array<XqWord, 8>;
  for (var j0 = 0u; j0 < 8u; j0 += LANES_SHARE) {
    let v = xq_word_share(xq_word(xb + j0 + lanes_slot()));
    for (var k = 0u; k < LANES_SHARE; k++) { o[j0 + k] = lanes_xq(v, k); }
  }
  return o;
}

/** The eight f16 scales of a quad (dot_scale_quad), in block order. */
fn scales8(q: vec4<u32>) -> array<f32, 8> {
  let a = unpack2x16float(q.x);
  let b = unpack2x16float(q.y);
  let c = unpack2x16float(q.z);
  let d = unpack2x16float(q.w);
  return array<f32, 8>(a.x, a.y, b.x, b.y, c.x, c.y, d.x, d.y);
}

/** v[k] by selects (an index into a private array can cost lavapipe a trip through the stack). */
fn nth8(v: array<f32, 8>, k: u32) -> f32 {
  let odd = (k & 1u) != 0u;
  let p0 = select(v[0], v[1], odd);
  let p1 = select(v[2], v[3], odd);
  let p2 = select(v[4], v[5], odd);
  let p3 = select(v[6], v[7], odd);
  let hi = (k & 2u) != 0u;
  return select(select(p0, p1, hi), select(p2, p3, hi), (k & 4u) != 0u);
}

fn total(acc: array<f32, 8>) -> f32 {
  if (ORDER == 1u) { return acc[0]; }
  return opaque(opaque(acc[0] + acc[4]) + opaque(acc[2] + acc[6])) + opaque(opaque(acc[1] + acc[5]) + opaque(acc[3] + acc[7]));
}

@compute @workgroup_size(RPW)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>{{LANES_ARGS}}) {
  exact_init();
  {{LANES_INIT}}
  let first = (wg.y * ng.x + wg.x) * RPW * RPT + li;
  let M = select(S.n_tokens, S.n_rows, P.rows_only == 1u);
  let t0 = wg.z * TT;
  let nb = P.K / 32u;
  // rows past the end read the last row and are not stored
  var rb: array<u32, RPT>;
  var rb2: array<u32, RPT>;
  for (var r = 0u; r < RPT; r++) {
    let row = min(first + r * RPW, P.N - 1u);
    rb[r] = row_base(row, P.row_bytes);
    rb2[r] = row_base(row + P.N, P.row_bytes);
  }

  var acc: array<array<array<f32, 8>, TT>, RPT>;
  var acc2: array<array<array<f32, 8>, TT>, RPT>;
  var mins: array<array<f32, TT>, RPT>;
  var mins2: array<array<f32, TT>, RPT>;
  // each token's activation scales, LANES_SHARE blocks' worth loaded in one round (a lane a
  // block) and shuffled out block by block: on lavapipe the scale every lane wants was a load
  // round of its own per block
  var dxs: array<f32, TT>;
  // the weights' scales likewise, eight blocks' in one quad per row where the format keeps them
  // contiguous (SCALE_QUADS): one load where there were eight
  var sw: array<array<f32, 8>, RPT>;
  var sw2: array<array<f32, 8>, RPT>;
  for (var c = 0u; c < nb; c++) {
    if (SCALE_QUADS && c % 8u == 0u) {
      for (var r = 0u; r < RPT; r++) {
        sw[r] = scales8(dot_scale_quad(rb[r], c / 8u, P.K));
        if (MODE == 2u) { sw2[r] = scales8(dot_scale_quad(rb2[r], c / 8u, P.K)); }
      }
    }
    let slot = c % LANES_SHARE;
    if (slot == 0u) {
      let cb = min(c + lanes_slot(), nb - 1u);
      for (var t = 0u; t < TT; t++) {
        let tok = min(t0 + t, M - 1u);
        dxs[t] = bitcast<f32>(xq_word((tok * nb + cb) * Q8_BLOCK_WORDS + 8u));
      }
    }
    var dw: array<f32, RPT>;
    var dw2: array<f32, RPT>;
    var mw: array<f32, RPT>;
    var mw2: array<f32, RPT>;
    // A tile of tokens loads the block's weights once, before its tokens; one token loads
    // them after its activations (before them, the output head took 1.12x the time and the
    // body's products up to 1.07x).
    var w: array<array<u32, 8>, RPT>;
    var w2: array<array<u32, 8>, RPT>;
    for (var r = 0u; r < RPT; r++) {
      if (SCALE_QUADS) {
        dw[r] = nth8(sw[r], c % 8u);
        if (MODE == 2u) { dw2[r] = nth8(sw2[r], c % 8u); }
      } else {
        dw[r] = dot_scale(rb[r], c, P.K);
        if (MODE == 2u) { dw2[r] = dot_scale(rb2[r], c, P.K); }
      }
      if (HAS_MIN) {
        mw[r] = dot_min(rb[r], c, P.K);
        if (MODE == 2u) { mw2[r] = dot_min(rb2[r], c, P.K); }
      }
      if (TT > 1u) {
        w[r] = block_words(rb[r], c, P.K);
        if (MODE == 2u) { w2[r] = block_words(rb2[r], c, P.K); }
      }
    }
    for (var t = 0u; t < TT; t++) {
      if (t0 + t < M) {
        let xb = ((t0 + t) * nb + c) * Q8_BLOCK_WORDS;
        let dx = lanes_f1(dxs[t], slot);
        let xw = xq_block(xb);
        for (var r = 0u; r < RPT; r++) {
          acc[r][t] = accumulate(acc[r][t], dw[r] * dx, tile_words(rb[r], c, w[r]), xw);
          if (MODE == 2u) { acc2[r][t] = accumulate(acc2[r][t], dw2[r] * dx, tile_words(rb2[r], c, w2[r]), xw); }
        }
        if (HAS_MIN) {
          let sx = bitcast<f32>(xq_word(xb + 9u));
          for (var r = 0u; r < RPT; r++) {
            mins[r][t] = min_madd(mw[r], sx, mins[r][t]);
            if (MODE == 2u) { mins2[r][t] = min_madd(mw2[r], sx, mins2[r][t]); }
          }
        }
      }
    }
  }
  for (var r = 0u; r < RPT; r++) {
    let row = first + r * RPW;
    for (var t = 0u; t < TT; t++) {
      if (row < P.N && t0 + t < M) {
        var s = total(acc[r][t]);
        var up = 0.0;
        if (MODE == 2u) { up = total(acc2[r][t]); }
        if (HAS_MIN) {
          s = opaque(s + mins[r][t]);
          up = opaque(up + mins2[r][t]);
        }
        if (HAS_BIAS) { s += BIAS[row]; }
        let yi = (t0 + t) * P.y_stride + P.y_off + row;
        if (MODE == 0u) { Y[yi] = s; }
        if (MODE == 1u) { Y[yi] = s + Y[yi]; }
        if (MODE == 2u) { Y[yi] = silu_ggml(s) * up; }
      }
    }
  }
}
