// Activations to Q8_0 blocks, as llama.cpp quantizes the input of every Q8_0 / Q4_0 matrix
// product (quantize_row_q8_0: scale amax/127 kept as f16, q = round-half-even(x * (127/amax)),
// both divisions rounded once). Our integer-dot matvec then reproduces its numbers. Per block of
// 32: 8 words of packed int8, the scale (f32 of the f16 value) and the sum of the quants.

struct Params {
  K: u32,        // floats per token (a multiple of 32)
  x_stride: u32,
}

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> XQ: array<u32>;
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.x;
  let t = gid.y;
  let nb = P.K / 32u;
  if (b >= nb) { return; }
  let xb = t * P.x_stride + b * 32u;
  var amax = 0.0;
  for (var i = 0u; i < 32u; i++) { amax = max(amax, abs(X[xb + i])); }
  let d = amax / 127.0;
  let id = select(0.0, 127.0 / amax, amax != 0.0);
  let o = (t * nb + b) * 10u;
  var sum = 0i;
  for (var j = 0u; j < 8u; j++) {
    var w = 0u;
    for (var k = 0u; k < 4u; k++) {
      let q = i32(round(X[xb + 4u * j + k] * id));
      sum += q;
      w = w | ((bitcast<u32>(q) & 0xFFu) << (8u * k));
    }
    XQ[o + j] = w;
  }
  XQ[o + 8u] = bitcast<u32>(round_f16(d));  // the scale as stored
  XQ[o + 9u] = bitcast<u32>(sum);
}
