// Workgroup reductions with subgroup operations: one subgroupAdd/Max per subgroup, then the
// per-subgroup results through workgroup memory. Same interface as reduce_shared.wgsl.
enable subgroups;

var<workgroup> red_buf: array<f32, WG>;
var<private> sg_lane: u32;
var<private> sg_size: u32;

fn reduce_init_sg(lane: u32, size: u32) { sg_lane = lane; sg_size = size; }

fn wg_sum(v: f32, li: u32) -> f32 {
  let s = subgroupAdd(v);
  let nsg = (WG + sg_size - 1u) / sg_size;
  if (sg_lane == 0u) { red_buf[li / sg_size] = s; }
  workgroupBarrier();
  var r = 0.0;
  for (var i = 0u; i < nsg; i++) { r += red_buf[i]; }
  workgroupBarrier();
  return r;
}

fn wg_max(v: f32, li: u32) -> f32 {
  let s = subgroupMax(v);
  let nsg = (WG + sg_size - 1u) / sg_size;
  if (sg_lane == 0u) { red_buf[li / sg_size] = s; }
  workgroupBarrier();
  var r = red_buf[0];
  for (var i = 1u; i < nsg; i++) { r = max(r, red_buf[i]); }
  workgroupBarrier();
  return r;
}
