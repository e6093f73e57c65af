// Q4_0 in the engine's row layout (quant.ts `toGpuRows`): a row of K elements is K/2 nibble
// bytes (block c = words 4c..4c+4 of the row; element j is the low nibble of byte j, j + 16 the
// high one, as in the GGUF block), then K/32 f16 scales, so every nibble word is aligned; rows
// interleaved in groups (bytes.wgsl `row_word`).
fn q4_0_scale(rb: u32, c: u32, K: u32) -> f32 {
  return row_f16(rb, K / 2u + 2u * c);
}

fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let d = q4_0_scale(rb, c, K);
  let a = 4u * c;
  for (var j = 0u; j < 4u; j++) {
    let w = row_word(rb, a + j);
    let lo = vec4<f32>(unpack4xU8(w & 0x0F0F0F0Fu)) - 8.0;
    let hi = vec4<f32>(unpack4xU8((w >> 4u) & 0x0F0F0F0Fu)) - 8.0;
    for (var k = 0u; k < 4u; k++) {
      o[4u * j + k] = d * lo[k];
      o[16u + 4u * j + k] = d * hi[k];
    }
  }
  return o;
}

// Decode path: low nibbles are elements 0..15, high nibbles 16..31; (q - 8) folded in as
// sum(q x) - 8 sum(x), scaled once per block.
fn chunk_dot(rb: u32, c: u32, x: array<vec4<f32>, 8>, K: u32) -> f32 {
  let a = 4u * c;
  var acc = 0.0;
  var xs = 0.0;
  for (var j = 0u; j < 4u; j++) {
    let w = row_word(rb, a + j);
    let lo = vec4<f32>(unpack4xU8(w & 0x0F0F0F0Fu));
    let hi = vec4<f32>(unpack4xU8((w >> 4u) & 0x0F0F0F0Fu));
    let xl = x[j];
    let xh = x[j + 4u];
    acc += dot(lo, xl) + dot(hi, xh);
    xs += dot(xl + xh, vec4<f32>(1.0));
  }
  return (acc - 8.0 * xs) * q4_0_scale(rb, c, K);
}
