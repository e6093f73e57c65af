// What both RMSNorm kernels (rmsnorm.wgsl, rmsnorm_lanes.wgsl) read and write: the forward pass
// binds either with the same buffers.

struct Params {
  n: u32,
  group_stride: u32,
  x_stride: u32,
  y_stride: u32,
  eps: f32,
  last_only: u32,  // 1: normalize only the batch's last token, into row 0 of Y
  off: u32,        // first float of group 0 within a token's row
}

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<storage, read> NW: array<f32>;
@group(0) @binding(3) var<storage, read> S: array<u32>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<storage, read_write> XQ: array<u32>;

const Q8_OUT: bool = {{Q8_OUT}};
