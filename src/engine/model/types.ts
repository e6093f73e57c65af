// The neutral description of a model file, whatever its container (GGUF or a Hugging Face
// safetensors directory). Everything above the readers (hyperparameters, tokenizer, chat
// template, weight upload, `info`, `convert`) reads only this.

/** ggml tensor types, numbered as in the GGUF format. */
export enum GGMLType {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35,
}

/** GGUF metadata value types. */
export enum GGUFValueType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

/** A metadata value as read: numbers (64-bit integers as bigint), strings, booleans, arrays. */
export type GGUFValue = number | bigint | string | boolean | GGUFValue[] | ArrayLike<number>;

export interface TensorInfo {
  name: string;
  type: GGMLType;
  /** ggml order: dims[0] is the contiguous (innermost) dimension; a weight is [in, out]. */
  dims: number[];
  /** Absolute byte offset of the data in its file. */
  offset: number;
  nbytes: number;
  /** File holding the data (sharded safetensors have several). */
  file: string;
}

export interface ModelFile {
  /** What was opened: a .gguf path or a directory. */
  path: string;
  format: "gguf" | "safetensors";
  /**
   * GGUF-style metadata keys (`general.architecture`, `llama.embedding_length`,
   * `tokenizer.ggml.tokens`, `tokenizer.chat_template`, ...). A Hugging Face directory is
   * described with the same keys, so nothing downstream needs to know the container.
   */
  metadata: Map<string, GGUFValue>;
  /** Tensors under GGUF names (`token_embd.weight`, `blk.0.attn_q.weight`, ...). */
  tensors: TensorInfo[];
  /**
   * The tensor's bytes in its stored type and GGUF layout, read lazily from disk. For Hugging
   * Face checkpoints the q/k projections come back already permuted from the rotate-half layout
   * to GGUF's interleaved RoPE layout.
   */
  read(name: string): Uint8Array;
  close(): void;
}
