// Architectures as data: each is a list of steps one transformer block runs, in order. The
// forward-pass builder turns a recipe into dispatches; nothing else knows the architecture.

export type Step =
  /** RMSNorm of the residual stream into `xn` with a per-layer weight. */
  | { op: "norm"; weight: string }
  /** q, k, v projections of `xn` into `qkv` (one dispatch when the three share a format). */
  | { op: "qkv"; bias: boolean }
  /** Per-head RMSNorm of q and k in place (qwen3). */
  | { op: "qk_norm" }
  /** RoPE on q and k, k and v written into the layer's KV cache. */
  | { op: "rope_kv" }
  /** Causal grouped-query attention of q over the cache into `attn`. */
  | { op: "attention" }
  /** residual += W · src (the add folded into the matvec). */
  | { op: "proj_add"; weight: string; src: "attn" | "ffn" }
  /** ffn = silu(gate · xn) * (up · xn) (one dispatch when gate and up share a matrix). */
  | { op: "glu" };

const llamaBlock: Step[] = [
  { op: "norm", weight: "attn_norm" },
  { op: "qkv", bias: false },
  { op: "rope_kv" },
  { op: "attention" },
  { op: "proj_add", weight: "attn_output", src: "attn" },
  { op: "norm", weight: "ffn_norm" },
  { op: "glu" },
  { op: "proj_add", weight: "ffn_down", src: "ffn" },
];

/** Layer recipes by `general.architecture`. */
export const RECIPES: Record<string, Step[]> = {
  llama: llamaBlock,
  qwen2: llamaBlock.map((s) => (s.op === "qkv" ? { op: "qkv", bias: true } : s)),
  qwen3: llamaBlock.flatMap((s) => (s.op === "rope_kv" ? [{ op: "qk_norm" } as Step, s] : [s])),
};

export function recipeFor(arch: string): Step[] {
  const r = RECIPES[arch];
  if (!r) throw new Error(`no layer recipe for architecture "${arch}" (have: ${Object.keys(RECIPES).join(", ")})`);
  return r;
}
