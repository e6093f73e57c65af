// The weight binding (binding 0 of every kernel that reads weights) and byte access to its rows.
// Rows are padded to whole units of ROW_UNIT words and interleaved a unit at a time in groups of
// ROW_GROUP (quant.ts `toGpuRows`): a row is addressed by `row_base` and read by byte offset
// within it, or a quad at a time (`row_quad`, one load where the unit is a quad: on lavapipe a
// load tests each lane once however wide it is). Blocks kept in their GGUF layout (Q6_K's 210
// bytes) do not start on word boundaries, so `row_u32` funnel-shifts across two words; Q8_0 and
// Q4_0 are regrouped at upload so their quants are aligned.

const ROW_GROUP: u32 = {{ROW_GROUP}}u;
const ROW_UNIT: u32 = {{ROW_UNIT}}u;

@group(0) @binding(0) var<storage, read> W: array<{{W_ELEM}}>;

/** Word i of the binding. */
fn w_word(i: u32) -> u32 { return {{W_WORD}}; }

/** Words 4q .. 4q + 3 of the row at `rb`. */
fn row_quad(rb: u32, q: u32) -> vec4<u32> { return {{ROW_QUAD}}; }

/** Where row `row` starts (the byte of its word 0). */
fn row_base(row: u32, row_bytes: u32) -> u32 {
  return (row / ROW_GROUP) * ROW_GROUP * row_bytes + (row % ROW_GROUP) * ROW_UNIT * 4u;
}

/** Word j of the row at `rb`. */
fn row_word(rb: u32, j: u32) -> u32 {
  return w_word((rb >> 2u) + (j / ROW_UNIT) * ROW_GROUP * ROW_UNIT + j % ROW_UNIT);
}

/** The f16 at byte `off` (even) of the row at `rb`. */
fn row_f16(rb: u32, off: u32) -> f32 {
  return unpack2x16float(row_u16(rb, off)).x;
}

/** The 32 bits at byte `off` of the row at `rb`, aligned or not. */
fn row_u32(rb: u32, off: u32) -> u32 {
  let i = off >> 2u;
  let s = (off & 3u) * 8u;
  if (s == 0u) { return row_word(rb, i); }
  return (row_word(rb, i) >> s) | (row_word(rb, i + 1u) << (32u - s));
}

/** The 16 bits at byte `off` (even: every 16-bit field in the block layouts is) of the row at `rb`. */
fn row_u16(rb: u32, off: u32) -> u32 {
  return (row_word(rb, off >> 2u) >> ((off & 2u) * 8u)) & 0xFFFFu;
}

// Byte k (0..3) of a word as a signed integer, in f32.
fn sbyte(w: u32, k: u32) -> f32 {
  return f32(bitcast<i32>(w << (24u - 8u * k)) >> 24u);
}

fn ubyte(w: u32, k: u32) -> u32 {
  return (w >> (8u * k)) & 0xFFu;
}

// The dot of two words of four signed bytes. Written as unpack + integer dot: lavapipe runs this
// twice as fast as dot4I8Packed (same exact integer).
fn dot4(a: u32, b: u32) -> i32 {
  return dot(unpack4xI8(a), unpack4xI8(b));
}
