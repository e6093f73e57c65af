// What both RMSNorm kernels (rmsnorm.wgsl, rmsnorm_lanes.wgsl) share: the buffers the forward
// pass binds either with, where a workgroup's rows are, the squares' sum and the scale from it.

struct Params {
  n: u32,
  group_stride: u32,
  x_stride: u32,
  y_stride: u32,
  eps: f32,
  gather: u32,     // 1: row r of Y normalizes the token of the step's sampled row r (the output norm)
  off: u32,        // first float of group 0 within a token's row
}

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<storage, read> NW: array<f32>;
@group(0) @binding(3) var<storage, read> S: Step;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<storage, read_write> XQ: array<u32>;

const Q8_OUT: bool = {{Q8_OUT}};

/** Workgroup wg's rows: (first float read, first float written, token row of XQ). */
fn norm_rows(wg: vec3<u32>) -> vec3<u32> {
  let t_in = select(wg.y, S.rows[wg.y].token, P.gather == 1u);
  let t_out = wg.y;
  let g = P.off + wg.x * P.group_stride;
  return vec3<u32>(t_in * P.x_stride + g, t_out * P.y_stride + g, t_out);
}

/** The squares of elements first, first + stride, ... of the group at src, as a pair sum. */
fn sum_squares(src: u32, first: u32, stride: u32) -> vec2<f32> {
  var ss = vec2<f32>(0.0, 0.0);
  for (var i = first; i < P.n; i += stride) { let v = {{SRC}}[src + i]; ss = dsum_add(ss, v * v); }
  return ss;
}

/** 1 / sqrt(mean + eps), the mean the pair sum total / n rounded once (q, then its correction from the exact remainder). */
fn norm_scale(total: vec2<f32>) -> f32 {
  let nf = f32(P.n);
  let q = total.x / nf;
  let r = opaque(fma_exact(-q, nf, total.x) + total.y);
  let mean = q + r / nf;
  return 1.0 / sqrt(mean + P.eps);
}
