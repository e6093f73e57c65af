// Model -> GGUF conversion that llama.cpp loads. Weights keep their stored type (F32 stays F32,
// F16/BF16 stay so); a Hugging Face directory gets the metadata llama.cpp's convert_hf_to_gguf
// writes, its tokenizer converted to `tokenizer.ggml.*` keys by the tokenizer module, and its
// q/k rows in GGUF order (the ModelFile already returns them permuted). A GGUF input is
// rewritten with its metadata types preserved.

import { existsSync } from "node:fs";
import { ModelFileError } from "./errors.ts";
import { writeGGUF, type GGUFMetadataInput, type GGUFTensorInput } from "./gguf-writer.ts";
import type { GGUFFile } from "./gguf-parse.ts";
import { gguf } from "./gguf-values.ts";
import { llama3RopeFactors, readHParams } from "./hparams.ts";
import { hfTokenizerToGGUF } from "../tokenizer/hf-to-gguf.ts";
import { GGMLType, type GGUFValue, type ModelFile } from "./types.ts";

export interface ConvertOptions {
  /** general.name to record (default: the source's name). */
  name?: string;
  /** Replace an existing output file (default false: refuse). */
  overwrite?: boolean;
}

export interface ConvertResult {
  path: string;
  tensorCount: number;
  metadataCount: number;
}

/** llama.cpp's `general.file_type` (enum llama_ftype) for unquantized weights. */
const FILE_TYPES: Partial<Record<GGMLType, number>> = {
  [GGMLType.F32]: 0, // ALL_F32
  [GGMLType.F16]: 1, // MOSTLY_F16
  [GGMLType.BF16]: 32, // MOSTLY_BF16
};

/**
 * Keys of our directory reader that llama.cpp's converter does not write: the raw tokenizer
 * files (converted instead) and RoPE scaling (written below in llama.cpp's own form).
 */
const HF_ONLY_KEYS = [/^tokenizer\.huggingface\./, /\.rope\.scaling\./];

type Metadata = Map<string, GGUFMetadataInput>;
/** The dominant type of the 2-D weights: what llama.cpp's `general.file_type` describes. */
function dominantType(model: ModelFile): GGMLType {
  const counts = new Map<GGMLType, number>();
  for (const t of model.tensors) if (t.dims.length >= 2) counts.set(t.type, (counts.get(t.type) ?? 0) + t.nbytes);
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? GGMLType.F32;
}

/** Metadata for a Hugging Face directory, in the order and types llama.cpp's converter uses. */
function hfMetadata(model: ModelFile, opts: ConvertOptions): { metadata: Metadata; extraTensors: GGUFTensorInput[] } {
  const hp = readHParams(model);
  const src = model.metadata;
  const a = hp.arch;
  const md: Metadata = new Map();
  const fileType = FILE_TYPES[dominantType(model)];
  if (fileType === undefined) throw new ModelFileError(model.path, "only F32, F16 and BF16 checkpoints can be converted");

  md.set("general.architecture", a);
  md.set("general.type", "model");
  md.set("general.name", opts.name ?? (src.get("general.name") as string));
  md.set(`${a}.block_count`, gguf.u32(hp.nLayer));
  md.set(`${a}.context_length`, gguf.u32(hp.nCtx));
  md.set(`${a}.embedding_length`, gguf.u32(hp.nEmbd));
  md.set(`${a}.feed_forward_length`, gguf.u32(hp.nFf));
  md.set(`${a}.attention.head_count`, gguf.u32(hp.nHead));
  md.set(`${a}.attention.head_count_kv`, gguf.u32(hp.nHeadKv));
  md.set(`${a}.rope.freq_base`, gguf.f32(hp.ropeTheta));
  md.set(`${a}.attention.layer_norm_rms_epsilon`, gguf.f32(hp.rmsEps));
  // Other keys read from config.json (key_length, vocab_size, linear scaling...), minus those
  // only meaningful to our own reader.
  for (const [k, v] of src) {
    if (md.has(k) || !k.startsWith(`${a}.`) || HF_ONLY_KEYS.some((p) => p.test(k))) continue;
    md.set(k, v);
  }
  if (hp.ropeScaling?.type === "linear") {
    md.set(`${a}.rope.scaling.type`, "linear");
    md.set(`${a}.rope.scaling.factor`, gguf.f32(hp.ropeScaling.factor));
  }
  md.set("general.file_type", gguf.u32(fileType));

  const tokenizerJson = src.get("tokenizer.huggingface.json");
  if (typeof tokenizerJson !== "string") throw new ModelFileError(model.path, "no tokenizer.json to convert");
  const tokenizerConfig = src.get("tokenizer.huggingface.config");
  let tokenizerMetadata: Map<string, GGUFMetadataInput>;
  try {
    tokenizerMetadata = hfTokenizerToGGUF(tokenizerJson, typeof tokenizerConfig === "string" ? tokenizerConfig : undefined);
  } catch (e) {
    throw new ModelFileError(model.path, `cannot convert the tokenizer: ${(e as Error).message}`);
  }
  for (const [k, v] of tokenizerMetadata) md.set(k, v);
  const template = src.get("tokenizer.chat_template");
  if (typeof template === "string") md.set("tokenizer.chat_template", template);
  md.set("general.quantization_version", gguf.u32(2));

  // Llama-3 scaling travels as a tensor of frequency divisors, as llama.cpp's converter writes it.
  const extraTensors: GGUFTensorInput[] = [];
  if (hp.ropeScaling?.type === "llama3") {
    const factors = llama3RopeFactors(hp, hp.ropeScaling);
    extraTensors.push({ name: "rope_freqs.weight", type: GGMLType.F32, dims: [factors.length], data: new Uint8Array(factors.buffer) });
  }
  return { metadata: md, extraTensors };
}

function ggufMetadata(model: ModelFile, opts: ConvertOptions): Metadata {
  const typed = (model as GGUFFile).typedMetadata?.();
  const md: Metadata = typed ? new Map(typed) : new Map<string, GGUFValue>(model.metadata);
  if (opts.name !== undefined) md.set("general.name", opts.name);
  return md;
}

/** Writes `model` as a GGUF file at `outPath` (atomically: a failure leaves nothing behind). */
export async function convertToGGUF(model: ModelFile, outPath: string, opts: ConvertOptions = {}): Promise<ConvertResult> {
  if (existsSync(outPath) && !opts.overwrite) throw new ModelFileError(outPath, "output file exists (pass overwrite to replace it)");
  const { metadata, extraTensors } = model.format === "gguf"
    ? { metadata: ggufMetadata(model, opts), extraTensors: [] as GGUFTensorInput[] }
    : hfMetadata(model, opts);
  const tensors: GGUFTensorInput[] = [
    ...extraTensors,
    ...model.tensors.map((t) => ({ name: t.name, type: t.type, dims: t.dims, data: () => model.read(t.name) })),
  ];
  writeGGUF(outPath, metadata, tensors);
  return { path: outPath, tensorCount: tensors.length, metadataCount: metadata.size };
}
