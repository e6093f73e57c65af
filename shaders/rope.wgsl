// Rotary position embedding on the fresh q and k of each token, fused with the KV-cache write:
// q is rotated in place, k rotated into the cache at its position, v copied there (the cache
// row of a token's position through its sequence's page table, pages.wgsl). FREQ holds
// cos and sin per (position, pair), computed on the host in double precision from the scaled
// frequencies (GPU sin/cos are only accurate near zero; positions reach thousands of radians).
// Pairs are (2i, 2i+1) for "norm" style (GGUF llama layout) and (i, i + n_rot/2) for NeoX; with
// partial rotation (n_rot < head_dim) the dimensions past n_rot pass through as pairs (2i, 2i+1)
// whose table entries are (1, 0), an exact identity.
// The rotation rounds like llama.cpp's compiled C (x0*cos - x1*sin contracted to one fused
// multiply-add over the rounded x1*sin), and the cache holds f16 values like its default cache.
{{ENABLE_F16}}

struct Params {
  n_head: u32,
  n_head_kv: u32,
  head_dim: u32,
  qkv_stride: u32,  // floats between tokens in QKV (q | k | v)
  kv_dim: u32,      // n_head_kv * head_dim
  neox: u32,
  n_rot: u32,       // rotated dimensions of a head
}

@group(0) @binding(0) var<storage, read_write> QKV: array<f32>;
@group(0) @binding(1) var<storage, read_write> KC: array<{{KV}}>;
@group(0) @binding(2) var<storage, read_write> VC: array<{{KV}}>;
@group(0) @binding(3) var<storage, read> CS: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read> S: Step;
@group(0) @binding(5) var<uniform> P: Params;
@group(0) @binding(6) var<storage, read> PT: array<u32>;

// f32 caches still round through f16, so both storages hold the same numbers.
fn kv_store(v: f32) -> {{KV}} { return {{KV}}(round_f16(v)); }

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  exact_init();
  let t = gid.y;
  let tok = S.tokens[t];
  let pos = tok.pos;
  let kv_base = kv_row(tok.slot, pos) * P.kv_dim;
  let half = P.head_dim / 2u;
  let n_pairs = (P.n_head + P.n_head_kv) * half;
  let i = gid.x;
  let row = t * P.qkv_stride;
  let q_dim = P.n_head * P.head_dim;
  if (i < n_pairs) {
    let h = i / half;
    let j = i % half;
    var a = 2u * j;
    var b = 2u * j + 1u;
    if (P.neox == 1u && 2u * j < P.n_rot) { a = j; b = j + P.n_rot / 2u; }
    let csn = CS[pos * half + j];
    let cs = csn.x;
    let sn = csn.y;
    let base = row + h * P.head_dim;  // k heads follow q heads in QKV
    let x0 = QKV[base + a];
    let x1 = QKV[base + b];
    let y0 = fma_exact(x0, cs, -(x1 * sn));
    let y1 = fma_exact(x0, sn, x1 * cs);
    if (h < P.n_head) {
      QKV[base + a] = y0;
      QKV[base + b] = y1;
    } else {
      let kb = kv_base + (h - P.n_head) * P.head_dim;
      KC[kb + a] = kv_store(y0);
      KC[kb + b] = kv_store(y1);
    }
  } else if (i < n_pairs + P.kv_dim) {
    let e = i - n_pairs;
    VC[kv_base + e] = kv_store(QKV[row + q_dim + P.kv_dim + e]);
  }
}
