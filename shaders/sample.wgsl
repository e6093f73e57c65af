// Picks each sampled row's next token on the GPU from its logits (row r's at r * n_vocab), so
// only 8 bytes a row come back: greedy argmax (lowest id on ties), or temperature + top-p
// sampling with the row's uniform draw (step.wgsl SampleRow: its settings and draw, from the
// sequence's own seeded stream on the host). The nucleus threshold is found by bisection on the
// scaled logit, so nothing is sorted. Also reports the token's log-probability under the
// unscaled distribution (when the row wants it), and feeds the id to the sequence's next step
// (FED[slot]: its embedding lookup reads it there when the host has not read it back yet).
//
// Second pass, a workgroup per row: sample_partial.wgsl has left PARTS partials (max, lowest id
// of the max, sum of exp(L - max)) over strided shares of the row's logits in PART; greedy only
// combines those (the lowest id among the shares' maxima), and the log-sum-exp is max +
// log(sum_g z_g * exp(max_g - max)).

struct Params {  // shared with sample_partial.wgsl
  n_vocab: u32,
}

@group(0) @binding(0) var<storage, read> LOGITS: array<f32>;
@group(0) @binding(1) var<storage, read_write> OUT: array<u32>;
@group(0) @binding(2) var<storage, read_write> FED: array<u32>;
@group(0) @binding(3) var<storage, read> S: Step;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<storage, read> PART: array<vec4<u32>>;

const WG: u32 = 256u;
const PARTS: u32 = {{GROUPS}}u * 256u;  // sample_partial.wgsl's threads

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;
var<workgroup> part: array<f32, WG>;
var<workgroup> picked: u32;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32> {{SG_ARGS}}) {
  {{SG_INIT}}
  let n = P.n_vocab;
  let r = wg.y;
  let row = S.rows[r];
  let l0 = r * n;
  let p0 = r * PARTS;
  // argmax over the partials, the lower id winning ties
  var bv = -3.4e38;
  var bi = 0xFFFFFFFFu;
  for (var g = li; g < PARTS; g += WG) {
    let v = bitcast<f32>(PART[p0 + g].x);
    let i = PART[p0 + g].y;
    if (v > bv || (v == bv && i < bi)) { bv = v; bi = i; }
  }
  best_v[li] = bv;
  best_i[li] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s) {
      let ov = best_v[li + s];
      let oi = best_i[li + s];
      if (ov > best_v[li] || (ov == best_v[li] && oi < best_i[li])) { best_v[li] = ov; best_i[li] = oi; }
    }
    workgroupBarrier();
  }
  let mx = best_v[0];
  let argmax = best_i[0];
  workgroupBarrier();

  var z1 = 0.0;
  for (var g = li; g < PARTS; g += WG) { z1 += bitcast<f32>(PART[p0 + g].z) * exp(bitcast<f32>(PART[p0 + g].x) - mx); }
  let lse = mx + log(wg_sum(z1, li));

  var id = argmax;
  if (row.temperature > 0.0) {
    let inv_t = 1.0 / row.temperature;
    // Contiguous ranges per thread so the final walk follows vocabulary order.
    let per = (n + WG - 1u) / WG;
    let lo_i = min(li * per, n);
    let hi_i = min(lo_i + per, n);
    var zt = 0.0;
    for (var i = lo_i; i < hi_i; i++) { zt += exp((LOGITS[l0 + i] - mx) * inv_t); }
    let total = wg_sum(zt, li);
    // Largest threshold tau (on the scaled logit, <= 0) whose kept mass still reaches top_p.
    var keep_lo = -104.0;  // exp(-104) underflows: keeps everything
    if (row.top_p < 1.0) {
      var a = -104.0;
      var b = 0.0;
      for (var it = 0u; it < 30u; it++) {
        let mid = 0.5 * (a + b);
        var ms = 0.0;
        for (var i = lo_i; i < hi_i; i++) {
          let s = (LOGITS[l0 + i] - mx) * inv_t;
          if (s >= mid) { ms += exp(s); }
        }
        let mass = wg_sum(ms, li);
        if (mass >= row.top_p * total) { a = mid; } else { b = mid; }
      }
      keep_lo = a;
    }
    var mine = 0.0;
    for (var i = lo_i; i < hi_i; i++) {
      let s = (LOGITS[l0 + i] - mx) * inv_t;
      if (s >= keep_lo) { mine += exp(s); }
    }
    part[li] = mine;
    if (li == 0u) { picked = argmax; }
    workgroupBarrier();
    var before = 0.0;
    var kept = 0.0;
    for (var i = 0u; i < WG; i++) {
      if (i < li) { before += part[i]; }
      kept += part[i];
    }
    let goal = row.draw * kept;
    if (goal >= before && goal < before + mine) {
      var run = before;
      var last = 0xFFFFFFFFu;
      for (var i = lo_i; i < hi_i; i++) {
        let s = (LOGITS[l0 + i] - mx) * inv_t;
        if (s >= keep_lo) {
          run += exp(s);
          last = i;
          if (run > goal) { break; }
        }
      }
      if (last != 0xFFFFFFFFu) { picked = last; }
    }
    workgroupBarrier();
    id = picked;
  }
  if (li == 0u) {
    OUT[2u * r] = id;
    OUT[2u * r + 1u] = select(0u, bitcast<u32>(LOGITS[l0 + id] - lse), row.want_logprob != 0u);
    FED[row.slot] = id;
  }
}
