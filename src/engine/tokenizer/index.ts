// createTokenizer: picks the tokenizer implementation from the model file's data. GGUF files name
// their tokenizer in `tokenizer.ggml.model`; a Hugging Face directory carries its raw
// tokenizer.json under `tokenizer.huggingface.json`.

import type { ModelFile } from "../model/types.ts";
import { createBpeTokenizer } from "./bpe.ts";
import { createHfTokenizer } from "./hf-json.ts";
import { createSpmTokenizer } from "./spm.ts";
import { TokenizerError, type Tokenizer } from "./types.ts";
import { metaString, readGGUFVocab } from "./vocab.ts";

export type { DecodeOptions, EncodeOptions, StreamDecoder, Tokenizer } from "./types.ts";
export { TokenType, TokenizerError } from "./types.ts";

type Metadata = ModelFile["metadata"];

// Keyed by `tokenizer.ggml.model` (or "huggingface" for tokenizer.json).
const BUILDERS: Record<string, (meta: Metadata) => Tokenizer> = {
  llama: (meta) => createSpmTokenizer(readGGUFVocab(meta)),
  gpt2: (meta) => createBpeTokenizer(readGGUFVocab(meta)),
  huggingface: (meta) => createHfTokenizer(metaString(meta, "tokenizer.huggingface.json")!, metaString(meta, "tokenizer.huggingface.config")),
};

/** The tokenizer kind a model's metadata asks for. */
export function tokenizerKind(meta: Metadata): string {
  // A Hugging Face directory's own tokenizer.json is the reference for it, even if a GGUF-style
  // vocabulary was derived alongside.
  if (meta.has("tokenizer.huggingface.json")) return "huggingface";
  const ggml = metaString(meta, "tokenizer.ggml.model");
  if (ggml !== undefined) return ggml;
  throw new TokenizerError("model has no tokenizer (neither tokenizer.ggml.model nor tokenizer.json)");
}

export function createTokenizer(model: Pick<ModelFile, "metadata"> & { path?: string }): Tokenizer {
  const kind = tokenizerKind(model.metadata);
  const build = BUILDERS[kind];
  if (!build) {
    throw new TokenizerError(`unsupported tokenizer '${kind}'${model.path ? ` in ${model.path}` : ""} (supported: ${Object.keys(BUILDERS).join(", ")})`);
  }
  return build(model.metadata);
}
