// Loads shared across a SIMD group, without subgroups (or with groups narrower than 8): every
// invocation loads every value itself, one per round. Same interface as lanes_subgroup.wgsl.

/** Values loaded per round. */
const LANES_SHARE: u32 = 1u;

fn lanes_init(id: u32) {}

/** Which value of a round this invocation loads. */
fn lanes_slot() -> u32 { return 0u; }

/** Value k (always 0) of the round: the invocation's own. */
fn lanes_i4(v: vec4<i32>, k: u32) -> vec4<i32> { return v; }
fn lanes_f4(v: vec4<f32>, k: u32) -> vec4<f32> { return v; }
