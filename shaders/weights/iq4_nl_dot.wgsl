// IQ4_NL weights (row layout as in iq4_nl.wgsl) for the integer-dot products: block c as eight
// words of four signed bytes, its nibbles looked up in IQ4_LEVELS (words 0..3: elements 0..15,
// as llama.cpp's shuffle lookup lays them out), and the block's scale. A whole block's dot
// reaches 32 * 127 * 127 > 2^16, past fma_int: WIDE_BLOCK_DOT has ORDER 1 round it with the
// general exact fma.
fn level_bytes(w: u32) -> u32 {
  var o = 0u;
  for (var k = 0u; k < 4u; k++) { o |= (bitcast<u32>(IQ4_LEVELS[(w >> (8u * k)) & 15u]) & 0xFFu) << (8u * k); }
  return o;
}

fn block_words(rb: u32, c: u32, K: u32) -> array<u32, 8> {
  let n = nibble_words(row_quad(rb, c));
  var o: array<u32, 8>;
  for (var j = 0u; j < 8u; j++) { o[j] = level_bytes(n[j]); }
  return o;
}

fn dot_scale(rb: u32, c: u32, K: u32) -> f32 {
  return iq4_nl_scale(rb, c, K);
}

// Scales one by one (dot_scale), not a quad of eight.
const SCALE_QUADS: bool = false;
fn dot_scale_quad(rb: u32, g: u32, K: u32) -> vec4<u32> { return vec4<u32>(); }

const HAS_MIN: bool = false;
const WIDE_BLOCK_DOT: bool = true;
fn dot_min(rb: u32, c: u32, K: u32) -> f32 { return 0.0; }
