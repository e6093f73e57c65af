// Activations through Q8_K and back, for the K-quant products: llama.cpp runs them on Q8_K
// blocks (quantize_row_q8_K: per 256, iscale = -127 / the signed value of largest magnitude,
// q = min(127, rne(iscale * x)), d = 1 / iscale); our float kernels then multiply the same d * q
// values, so the activations carry llama.cpp's quantization error and only the sums' rounding
// order differs. The blocks themselves go to XKB too (Q8K_BLOCK_WORDS words each: d, then the
// 256 quants as 64 words of four signed bytes), for the products that reproduce llama.cpp's
// integer K-quant dots (matvec_q8k.wgsl). A thread per block; XK rows are K floats.

struct Params {
  K: u32,        // floats per token (a multiple of 256)
  x_stride: u32,
}

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> XK: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
@group(0) @binding(3) var<storage, read_write> XKB: array<u32>;

const Q8K_BLOCK_WORDS: u32 = 65u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  exact_init();
  let b = gid.x;
  let t = gid.y;
  if (b >= P.K / 256u) { return; }
  let src = t * P.x_stride + 256u * b;
  let dst = t * P.K + 256u * b;
  let kb = (t * (P.K / 256u) + b) * Q8K_BLOCK_WORDS;
  var amax = 0.0;
  var peak = 0.0;
  for (var j = 0u; j < 256u; j++) {
    let v = X[src + j];
    if (abs(v) > amax) { amax = abs(v); peak = v; }
  }
  if (amax == 0.0) {
    for (var j = 0u; j < 256u; j++) { XK[dst + j] = 0.0; }
    for (var j = 0u; j <= 64u; j++) { XKB[kb + j] = 0u; }
    return;
  }
  let iscale = -127.0 / peak;
  let d = 1.0 / iscale;
  XKB[kb] = bitcast<u32>(d);
  for (var w = 0u; w < 64u; w++) {
    var packed = 0u;
    for (var k = 0u; k < 4u; k++) {
      let j = 4u * w + k;
      let q = min(127.0, round(opaque(iscale * X[src + j])));
      XK[dst + j] = d * q;
      packed = packed | ((bitcast<u32>(i32(q)) & 0xFFu) << (8u * k));
    }
    XKB[kb + 1u + w] = packed;
  }
}
