// One block of 32 activations to Q8_0, as llama.cpp's quantize_row_q8_0 does: scale amax/127
// kept as f16, q = round-half-even(x * (127/amax)), both divisions rounded once. Stored as
// Q8_BLOCK_WORDS words at XQ[o..]: 8 of packed int8, then the scale (f32 of the f16 value).
// The including kernel declares `XQ: array<u32>` (read_write).
const Q8_BLOCK_WORDS: u32 = {{Q8_BLOCK_WORDS}}u;

fn q8_block_store(v: array<f32, 32>, o: u32) {
  var amax = 0.0;
  for (var i = 0u; i < 32u; i++) { amax = max(amax, abs(v[i])); }
  let d = amax / 127.0;
  let id = select(0.0, 127.0 / amax, amax != 0.0);
  var sum = 0i;
  for (var j = 0u; j < 8u; j++) {
    var w = 0u;
    for (var k = 0u; k < 4u; k++) {
      let q = i32(round(v[4u * j + k] * id));
      sum += q;
      w = w | ((bitcast<u32>(q) & 0xFFu) << (8u * k));
    }
    XQ[o + j] = w;
  }
  XQ[o + 8u] = bitcast<u32>(round_f16(d));
  XQ[o + 9u] = bitcast<u32>(round_f16(d * f32(sum)));
}
