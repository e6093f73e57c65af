// Helpers shared by the 32-element nibble formats in the engine's row layout (quant.ts
// ROW_PLANES): a row's quants first, block c as quad c (element j the low nibble of byte j,
// j + 16 the high one), then each format's further planes.

/** The low (half 0) or high (half 1) nibbles of a quant word, one per byte. */
fn nibbles(w: u32, half: u32) -> u32 {
  return (w >> (4u * half)) & 0x0F0F0F0Fu;
}

/** Bits 0..3 of b as bit 4 of a word's four bytes (the Q5 formats' fifth bits). */
fn fifth_bits(b: u32) -> u32 {
  return ((b & 1u) | ((b & 2u) << 7u) | ((b & 4u) << 14u) | ((b & 8u) << 21u)) << 4u;
}

/**
 * Block c's 32 five-bit quants (0..31, one per byte) as eight words: words 0..3 the low nibbles
 * (elements 0..15), 4..7 the high ones, each with its bit of the block's `qh` word.
 */
fn q5_words(q: vec4<u32>, qh: u32) -> array<u32, 8> {
  var o: array<u32, 8>;
  for (var j = 0u; j < 4u; j++) {
    o[j] = nibbles(q[j], 0u) | fifth_bits(qh >> (4u * j));
    o[4u + j] = nibbles(q[j], 1u) | fifth_bits(qh >> (16u + 4u * j));
  }
  return o;
}

/** Eight words of unsigned bytes as a chunk: d * (byte + bias) + m, element 4j + k from byte k of word j. */
fn scaled_bytes(w: array<u32, 8>, d: f32, bias: f32, m: f32) -> array<f32, 32> {
  var o: array<f32, 32>;
  for (var j = 0u; j < 8u; j++) {
    let q = vec4<f32>(unpack4xU8(w[j])) + bias;
    for (var k = 0u; k < 4u; k++) { o[4u * j + k] = d * q[k] + m; }
  }
  return o;
}

/** The low and high nibbles of a quant quad as eight words (words 0..3: elements 0..15). */
fn nibble_words(q: vec4<u32>) -> array<u32, 8> {
  return array<u32, 8>(nibbles(q.x, 0u), nibbles(q.y, 0u), nibbles(q.z, 0u), nibbles(q.w, 0u),
                       nibbles(q.x, 1u), nibbles(q.y, 1u), nibbles(q.z, 1u), nibbles(q.w, 1u));
}
