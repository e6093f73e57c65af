// Q8_0 in the engine's row layout (quant.ts `toGpuRows`): a row of K elements is K int8 quants
// (block c = words 8c..8c+8 of the row), then K/32 f16 scales, so every quant word is aligned;
// rows interleaved in groups (bytes.wgsl `row_word`).
fn q8_0_scale(rb: u32, c: u32, K: u32) -> f32 {
  return row_f16(rb, K + 2u * c);
}

fn load_chunk(rb: u32, c: u32, K: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let d = q8_0_scale(rb, c, K);
  let a = 8u * c;
  for (var j = 0u; j < 8u; j++) {
    let q = vec4<f32>(unpack4xI8(row_word(rb, a + j)));
    for (var k = 0u; k < 4u; k++) { o[4u * j + k] = d * q[k]; }
  }
  return o;
}

// Decode path: unpack four quants at a time and scale once per block (d * sum(q x), which
// differs from sum((d q) x) only by float rounding).
fn chunk_dot(rb: u32, c: u32, x: array<vec4<f32>, 8>, K: u32) -> f32 {
  let a = 8u * c;
  var acc = 0.0;
  for (var j = 0u; j < 8u; j++) {
    let q = vec4<f32>(unpack4xI8(row_word(rb, a + j)));
    acc += dot(q, x[j]);
  }
  return acc * q8_0_scale(rb, c, K);
}
