// Causal attention of each new token's query heads over the KV cache, grouped-query heads
// sharing a KV head. One workgroup per (head, token). Keys are visited in chunks of CH
// positions with an online softmax (running max and sum), so any context length fits in a
// fixed amount of workgroup memory.
{{ENABLE_F16}}

struct Params {
  n_head: u32,
  n_head_kv: u32,
  head_dim: u32,
  qkv_stride: u32,
  kv_dim: u32,
  out_stride: u32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read> QKV: array<f32>;
@group(0) @binding(1) var<storage, read> KC: array<{{KV}}>;
@group(0) @binding(2) var<storage, read> VC: array<{{KV}}>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
@group(0) @binding(4) var<storage, read> S: array<u32>;
@group(0) @binding(5) var<uniform> P: Params;

const WG: u32 = 64u;
const CH: u32 = 256u;
const MAX_HD: u32 = 256u;
const DPT: u32 = MAX_HD / WG;  // head dims per thread

var<workgroup> qv: array<f32, MAX_HD>;
var<workgroup> sc: array<f32, CH>;

// Round to the nearest f16 value, ties to even (pack2x16float may truncate). Normal range only:
// tiny values keep extra precision, which only matters far below the softmax's resolution.
fn round_f16(v: f32) -> f32 {
  let b = bitcast<u32>(v);
  return bitcast<f32>((b + 0xFFFu + ((b >> 13u) & 1u)) & 0xFFFFE000u);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32> {{SG_ARGS}}) {
  {{SG_INIT}}
  let h = wg.x;
  let t = wg.y;
  let hd = P.head_dim;
  let n = S[0] + t + 1u;  // causal: positions 0..pos
  let kvh = h / (P.n_head / P.n_head_kv);
  let kvo = kvh * hd;
  // q is rounded to f16 as llama.cpp does before its f16 K·q products.
  for (var d = li; d < hd; d += WG) { qv[d] = round_f16(QKV[t * P.qkv_stride + h * hd + d]); }
  workgroupBarrier();

  var m = -3.0e38;
  var l = 0.0;
  var acc: array<f32, DPT>;
  for (var c0 = 0u; c0 < n; c0 += CH) {
    let cn = min(CH, n - c0);
    var lmax = -3.0e38;
    for (var p = li; p < cn; p += WG) {
      let kb = (c0 + p) * P.kv_dim + kvo;
      var s = 0.0;
      for (var d = 0u; d < hd; d++) { s += qv[d] * f32(KC[kb + d]); }
      s *= P.scale;
      sc[p] = s;
      lmax = max(lmax, s);
    }
    let cmax = wg_max(lmax, li);
    let mnew = max(m, cmax);
    var lsum = 0.0;
    for (var p = li; p < cn; p += WG) { let e = exp(sc[p] - mnew); sc[p] = e; lsum += e; }
    let csum = wg_sum(lsum, li);
    let alpha = exp(m - mnew);
    l = l * alpha + csum;
    // When everything fits one chunk, weights are normalized and rounded to f16 before the
    // products with V, as llama.cpp's f16 V·softmax does; l is then 1.
    let single = n <= CH;
    let inv = select(1.0, 1.0 / csum, single);
    if (single) { l = 1.0; }
    for (var i = 0u; i < DPT; i++) {
      let d = li + i * WG;
      if (d < hd) {
        var a = acc[i] * alpha;
        for (var p = 0u; p < cn; p++) {
          var pw = sc[p];
          if (single) { pw = round_f16(pw * inv); }
          a += pw * f32(VC[(c0 + p) * P.kv_dim + kvo + d]);
        }
        acc[i] = a;
      }
    }
    m = mnew;
    workgroupBarrier();
  }
  for (var i = 0u; i < DPT; i++) {
    let d = li + i * WG;
    if (d < hd) { O[t * P.out_stride + h * hd + d] = acc[i] / l; }
  }
}
