// Loads shared across a SIMD group, without subgroups (or with groups narrower than 8): every
// invocation loads every value itself, one per round. Same interface as lanes_subgroup.wgsl.

/** Values loaded per round. */
const LANES_SHARE: u32 = 1u;

fn lanes_init(id: u32) {}

/** Which value of a round this invocation loads. */
fn lanes_slot() -> u32 { return 0u; }

/** Value k (always 0) of the round: the invocation's own. */
fn lanes_f4(v: vec4<f32>, k: u32) -> vec4<f32> { return v; }
fn lanes_xq(v: XqWord, k: u32) -> XqWord { return v; }
fn lanes_f1(v: f32, k: u32) -> f32 { return v; }

/** A word of four Q8_0 activations, kept packed (eight unpacked words cost SwiftShader 15%). */
alias XqWord = u32;
fn xq_word_share(w: u32) -> XqWord { return w; }
/** The integer dot of a word of four weights with one (bytes.wgsl). */
fn xq_dot(w: u32, x: XqWord) -> i32 { return dot4(w, x); }
