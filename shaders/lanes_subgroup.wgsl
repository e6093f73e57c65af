// Loads shared across a SIMD group. When every invocation of a group needs the same eight
// values (a row-per-thread product's activations), each of the group's first eight lanes loads
// one of them and all read the eight from those lanes by shuffles. On lavapipe a load is a loop
// over the group's lanes even when they all read one address, while a shuffle is one register
// permute: stories15M's output head ran in 0.72x the time. Needs subgroups of at least 8
// (GpuFeatures.wideSubgroups) and every invocation of the group present: no early returns
// before a shared load. Same interface as lanes_plain.wgsl. The kernels decide which loads are
// shared from compile-time constants (a row per thread, say), which WGSL's uniformity analysis
// cannot follow through values derived from the invocation index: hence the diagnostic switched
// off, and the rule above is the kernels' to keep.
enable subgroups;
diagnostic(off, subgroup_uniformity);

/** Values loaded per round: one per lane. */
const LANES_SHARE: u32 = 8u;

var<private> lanes_id: u32;

fn lanes_init(id: u32) { lanes_id = id; }

/** Which value of a round this invocation loads. */
fn lanes_slot() -> u32 { return lanes_id & 7u; }

/** Value k of the round, from the lane that loaded it. */
fn lanes_f4(v: vec4<f32>, k: u32) -> vec4<f32> { return subgroupShuffle(v, k); }
fn lanes_xq(v: XqWord, k: u32) -> XqWord { return subgroupShuffle(v, k); }
fn lanes_f1(v: f32, k: u32) -> f32 { return subgroupShuffle(v, k); }

/**
 * A word of four Q8_0 activations as the lanes share it: unpacked by the lane that loads it,
 * once, rather than by every lane that reads it (stories15M's output head: 0.93x the time).
 */
alias XqWord = vec4<i32>;
fn xq_word_share(w: u32) -> XqWord { return unpack4xI8(w); }
/** The integer dot of a word of four weights with one. */
fn xq_dot(w: u32, x: XqWord) -> i32 { return dot(unpack4xI8(w), x); }
