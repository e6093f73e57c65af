// Architectures as data: each is a list of steps one transformer block runs, in order. The
// forward-pass builder turns a recipe into dispatches; nothing else knows the architecture.

export type Step =
  /** RMSNorm of the residual stream into `xn` with a per-layer weight. */
  | { op: "norm"; weight: string }
  /**
   * q, k, v projections of `xn` into `qkv` (one dispatch when the three share a format, or
   * when the file stores them fused as attn_qkv, phi3).
   */
  | { op: "qkv"; bias: boolean }
  /** Per-head RMSNorm of q and k in place (qwen3). */
  | { op: "qk_norm" }
  /** RoPE on q and k, k and v written into the layer's KV cache. */
  | { op: "rope_kv" }
  /** Causal grouped-query attention of q over the cache into `attn`. */
  | { op: "attention" }
  /**
   * residual += W · src (the add folded into the matvec); with `post`, residual +=
   * RMSNorm(W · src) by that weight (gemma's post-norms). A residual scale (granite) multiplies
   * W · src before the add.
   */
  | { op: "proj_add"; weight: string; src: "attn" | "ffn"; post?: string }
  /**
   * ffn = act(gate · xn) * (up · xn), act the model's (SiLU, or GELU for gemma); one dispatch
   * when gate and up share a matrix (or the file stores them fused in ffn_up, phi3).
   */
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

/** With per-head q/k norms before RoPE. */
const withQKNorm = (block: Step[]): Step[] => block.flatMap((s) => (s.op === "rope_kv" ? [{ op: "qk_norm" } as Step, s] : [s]));

/** Gemma 2's block: llama's with each sublayer's output normalized before it joins the residual. */
const gemmaBlock: Step[] = llamaBlock.map((s) =>
  s.op === "proj_add" ? { ...s, post: s.src === "attn" ? "post_attention_norm" : "post_ffw_norm" } : s);

/**
 * Layer recipes by `general.architecture`. What is data, not steps, lives in the hyperparameters
 * (hparams.ts): scales, soft-caps, windows, RoPE tables per layer, the FFN's activation.
 */
export const RECIPES: Record<string, Step[]> = {
  llama: llamaBlock,
  qwen2: llamaBlock.map((s) => (s.op === "qkv" ? { op: "qkv", bias: true } : s)),
  qwen3: withQKNorm(llamaBlock),
  phi3: llamaBlock,
  granite: llamaBlock,
  smollm3: llamaBlock,
  gemma2: gemmaBlock,
  gemma3: withQKNorm(gemmaBlock),
};

export function recipeFor(arch: string): Step[] {
  const r = RECIPES[arch];
  if (!r) throw new Error(`no layer recipe for architecture "${arch}" (have: ${Object.keys(RECIPES).join(", ")})`);
  return r;
}
