// Weight-matrix times activations: Y[t, r] (op)= sum_k W[r, k] * X[t, k] for the tokens of this
// batch. Decode runs it with TT = 1 (a mat-vec); prefill with TT > 1, so each 32-element chunk
// of weights is dequantized once and reused for TT tokens (register tiling over tokens).
// TPR threads share a row; RPW rows per workgroup. The weight format's `load_chunk` is
// prepended by the kernel host, as are the byte helpers. X_FROM declares the activations
// (binding 1) and `x_quad(i)`, elements i..i+3 (i a multiple of 4 in the uniform form): a
// storage array, or where a step's rows fit, a uniform buffer (kernels.ts UNIFORM_X_BYTES).
// With a row per invocation (TPR 1) every thread reads the same activations, so a SIMD group
// loads each chunk once, a quad per lane, where subgroups allow (lanes_*.wgsl); rows past the end
// are then computed (from the last row) and not stored, so that no thread leaves its group early.
//
// MODE 0: Y = W·X (+ bias)           MODE 1: Y += W·X (+ bias), the residual add folded in
// MODE 2: Y = silu(W_gate·X) * (W_up·X), gate rows [0, N) and up rows [N, 2N) of one matrix

struct Params {
  K: u32,          // input length
  N: u32,          // output rows
  row_bytes: u32,  // bytes of one weight row
  x_stride: u32,   // floats between tokens in X
  y_stride: u32,   // floats between tokens in Y
  y_off: u32,      // column of Y where row 0 lands (split tensors)
  groups_x: u32,   // workgroups along x (rows are flattened over x and y)
  rows_only: u32,  // 1: the step's sampled rows (the output head), else all its tokens
}

{{X_FROM}}
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read> S: Step;
@group(0) @binding(5) var<uniform> P: Params;

const TPR: u32 = {{TPR}}u;
const RPW: u32 = {{RPW}}u;
const TT: u32 = {{TT}}u;
const MODE: u32 = {{MODE}}u;
const HAS_BIAS: bool = {{HAS_BIAS}};
const NACC: u32 = select(1u, 2u, MODE == 2u);

var<workgroup> partial: array<f32, TPR * RPW * TT * NACC>;

fn silu(x: f32) -> f32 { return x / (1.0 + exp(-x)); }

/** The 32 activations from X[xb] as eight quads. */
fn x_chunk(xb: u32) -> array<vec4<f32>, 8> {
  var o: array<vec4<f32>, 8>;
  if (TPR == 1u) {
    for (var j0 = 0u; j0 < 8u; j0 += LANES_SHARE) {
      let v = x_quad(xb + 4u * (j0 + lanes_slot()));
      for (var k = 0u; k < LANES_SHARE; k++) { o[j0 + k] = lanes_f4(v, k); }
    }
  } else {
    for (var j = 0u; j < 8u; j++) { o[j] = x_quad(xb + 4u * j); }
  }
  return o;
}

// Row `row` of token `t`: the dot product `s` (and the up row's `s2` in MODE 2) into Y.
fn store(row: u32, t: u32, s: f32, s2: f32) {
  var v = s;
  if (HAS_BIAS) { v += BIAS[row]; }
  let yi = t * P.y_stride + P.y_off + row;
  if (MODE == 0u) { Y[yi] = v; }
  if (MODE == 1u) { Y[yi] = Y[yi] + v; }
  if (MODE == 2u) { Y[yi] = silu(v) * s2; }
}

@compute @workgroup_size(TPR * RPW)
fn main(@builtin(local_invocation_index) li: u32,
        @builtin(workgroup_id) wg: vec3<u32>{{LANES_ARGS}}) {
  {{LANES_INIT}}
  let lane = li % TPR;
  let rl = li / TPR;
  let row = (wg.y * P.groups_x + wg.x) * RPW + rl;
  let rowc = min(row, P.N - 1u);  // rows past the end compute the last one, unstored
  let M = select(S.n_tokens, S.n_rows, P.rows_only == 1u);
  let t0 = wg.z * TT;
  let nch = (P.K + 31u) / 32u;

  var acc: array<f32, TT>;
  var acc2: array<f32, TT>;
  // A full chunk of 32 even in a ragged last one: the weights there are 0 and X is finite.
  if (TT == 1u) {
    // one token a workgroup (decode), each chunk dotted straight from the weights
    let xb = t0 * P.x_stride;
    for (var c = lane; c < nch; c += TPR) {
      let x = x_chunk(xb + c * 32u);
      acc[0] += chunk_dot(row_base(rowc, P.row_bytes), c, x, P.K);
      if (MODE == 2u) { acc2[0] += chunk_dot(row_base(rowc + P.N, P.row_bytes), c, x, P.K); }
    }
  } else {
    // prefill: gate and up rows in turn, so only one dequantized chunk is live (two made
    // lavapipe's compiler take minutes on the K-quant formats)
    for (var h = 0u; h < NACC; h++) {
      let rb = row_base(rowc + h * P.N, P.row_bytes);
      for (var c = lane; c < nch; c += TPR) {
        let w = load_chunk(rb, c, P.K);
        for (var t = 0u; t < TT; t++) {
          if (t0 + t < M) {
            let x = x_chunk((t0 + t) * P.x_stride + c * 32u);
            var s = 0.0;
            for (var j = 0u; j < 8u; j++) {
              for (var e = 0u; e < 4u; e++) { s += w[4u * j + e] * x[j][e]; }
            }
            if (h == 0u) { acc[t] += s; } else { acc2[t] += s; }
          }
        }
      }
    }
  }
  if (TPR == 1u) {
    // a row per invocation: no partial sums to combine, so no workgroup memory or barrier
    // (a barrier makes lavapipe run the workgroup's invocations as coroutines)
    for (var t = 0u; t < TT; t++) {
      if (row < P.N && t0 + t < M) { store(row, t0 + t, acc[t], acc2[t]); }
    }
    return;
  }
  for (var t = 0u; t < TT; t++) {
    partial[((rl * TT + t) * NACC) * TPR + lane] = acc[t];
    if (MODE == 2u) { partial[((rl * TT + t) * NACC + 1u) * TPR + lane] = acc2[t]; }
  }
  workgroupBarrier();
  // Each lane finishes tokens lane, lane + TPR, ... of its row.
  for (var t = lane; t < TT; t += TPR) {
    if (row < P.N && t0 + t < M) {
      var s = 0.0;
      var s2 = 0.0;
      for (var i = 0u; i < TPR; i++) {
        s += partial[((rl * TT + t) * NACC) * TPR + i];
        if (MODE == 2u) { s2 += partial[((rl * TT + t) * NACC + 1u) * TPR + i]; }
      }
      store(row, t0 + t, s, s2);
    }
  }
}
