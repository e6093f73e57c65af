// llama.cpp's CPU backend evaluates GELU through a table: at start-up it computes, for every
// half-precision value h, f16(gelu(h)) with the tanh approximation in float arithmetic, and its
// GeGLU looks the gate's value rounded to f16 up there. The same table, computed the same way
// (each float operation rounded, tanhf as the correctly rounded tanh), lets glu_mul.wgsl give
// its numbers exactly; the device's own tanh would flip an entry's rounding now and then.

import { floatToHalf, halfToFloat } from "./quant.ts";

const f = Math.fround;
const GELU_COEF_A = f(0.044715);
const SQRT_2_OVER_PI = f(0.7978845608028654);

/** ggml_gelu_f32 in float steps. */
function geluF32(x: number): number {
  const inner = f(f(SQRT_2_OVER_PI * x) * f(1 + f(f(GELU_COEF_A * x) * x)));
  return f(f(0.5 * x) * f(1 + f(Math.tanh(inner))));
}

let table: Float32Array | undefined;

/** gelu of each half (indexed by its bits), rounded to f16 and held as f32. */
export function ggmlGeluTable(): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const x = halfToFloat(h);
      table[h] = Number.isFinite(x) ? halfToFloat(floatToHalf(geluF32(x))) : 0;
    }
  }
  return table;
}
