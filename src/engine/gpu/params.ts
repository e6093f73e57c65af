// Kernel parameter blocks by field name: each kernel's uniform `Params` struct described once,
// field by field in the WGSL struct's order, and encoded from a record of named values, so a
// call site reads `{ K: 288, N: 864, ... }` instead of a positional array.

import { uniformBuffer, type Field } from "./buffers.ts";

type Scalar = "u32" | "f32";

export interface ParamsLayout<F extends Record<string, Scalar>> {
  readonly fields: F;
  /** The block's words in struct order (u32 fields as integers, f32 fields as floats). */
  encode(values: { [K in keyof F]: number }): Field[];
}

/** A uniform block whose fields are `fields`, in that order (they must match the WGSL struct). */
export function paramsLayout<const F extends Record<string, Scalar>>(fields: F): ParamsLayout<F> {
  const names = Object.keys(fields) as (keyof F & string)[];
  return {
    fields,
    encode(values) {
      return names.map((n) => {
        const v = values[n];
        if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`kernel parameter ${n} must be a finite number, got ${v}`);
        return fields[n] === "f32" ? { f: v } : v;
      });
    },
  };
}

/** A uniform buffer holding one parameter block. */
export function paramsBuffer<F extends Record<string, Scalar>>(
  device: GPUDevice, layout: ParamsLayout<F>, values: { [K in keyof F]: number }, label?: string,
): GPUBuffer {
  return uniformBuffer(device, layout.encode(values), label);
}

// One layout per kernel family; the WGSL struct each mirrors is named beside it.

/** matvec.wgsl, matvec_q8.wgsl `Params`. */
export const MATVEC_PARAMS = paramsLayout({
  K: "u32", N: "u32", row_bytes: "u32", x_stride: "u32", y_stride: "u32", y_off: "u32", groups_x: "u32", rows_only: "u32",
});
/** quantize_q8.wgsl. */
export const QUANTIZE_PARAMS = paramsLayout({ K: "u32", x_stride: "u32" });
/** embed.wgsl. */
export const EMBED_PARAMS = paramsLayout({ K: "u32", row_bytes: "u32", row0: "u32", rows: "u32", x_stride: "u32", scale: "f32" });
/** rmsnorm_common.wgsl (both RMSNorm kernels). */
export const NORM_PARAMS = paramsLayout({
  n: "u32", group_stride: "u32", x_stride: "u32", y_stride: "u32", eps: "f32", gather: "u32", off: "u32",
});
/** rope.wgsl. */
export const ROPE_PARAMS = paramsLayout({ n_head: "u32", n_head_kv: "u32", head_dim: "u32", qkv_stride: "u32", kv_dim: "u32", neox: "u32", n_rot: "u32" });
/** attention_score.wgsl (both attention kernels). */
export const ATTENTION_PARAMS = paramsLayout({
  n_head: "u32", n_head_kv: "u32", head_dim: "u32", qkv_stride: "u32", kv_dim: "u32", out_stride: "u32", scale: "f32",
  q_scale: "f32", softcap: "f32", window: "u32",
});
/** sample.wgsl and sample_partial.wgsl. */
export const SAMPLE_PARAMS = paramsLayout({ n_vocab: "u32" });
/** mask_logits.wgsl. */
export const MASK_PARAMS = paramsLayout({ n_vocab: "u32", words: "u32" });
/** glu_mul.wgsl. */
export const GLU_MUL_PARAMS = paramsLayout({ n: "u32", g_off: "u32", u_off: "u32", stride: "u32" });
/** add.wgsl: n values per token, times `scale`. */
export const ADD_PARAMS = paramsLayout({ n: "u32", scale: "f32" });
/** logit_cap.wgsl. */
export const LOGIT_CAP_PARAMS = paramsLayout({ n_vocab: "u32", pre: "f32", cap: "f32" });
