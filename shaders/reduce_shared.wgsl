// Workgroup reductions through workgroup memory (the portable fallback). The kernel defines
// `const WG` (a power of two) and calls these from uniform control flow.
var<workgroup> red_buf: array<f32, WG>;

fn reduce_init() {}

fn wg_sum(v: f32, li: u32) -> f32 {
  red_buf[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s) { red_buf[li] = red_buf[li] + red_buf[li + s]; }
    workgroupBarrier();
  }
  let r = red_buf[0];
  workgroupBarrier();
  return r;
}

fn wg_max(v: f32, li: u32) -> f32 {
  red_buf[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s) { red_buf[li] = max(red_buf[li], red_buf[li + s]); }
    workgroupBarrier();
  }
  let r = red_buf[0];
  workgroupBarrier();
  return r;
}
