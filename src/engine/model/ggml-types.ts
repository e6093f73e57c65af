// Storage traits of ggml tensor types: how many elements a block holds and how many bytes it
// takes. Sizes follow ggml's block structs (ggml-common.h); a tensor's innermost dimension is
// stored as whole blocks.

import { GGMLType } from "./types.ts";

export interface GGMLTypeTraits {
  type: GGMLType;
  name: string;
  /** Elements per block (1 for plain scalar types). */
  blockSize: number;
  /** Bytes per block. */
  bytesPerBlock: number;
  quantized: boolean;
}

// [type, name, elements per block, bytes per block]
const TRAITS_TABLE: [GGMLType, string, number, number][] = [
  [GGMLType.F32, "F32", 1, 4],
  [GGMLType.F16, "F16", 1, 2],
  [GGMLType.BF16, "BF16", 1, 2],
  [GGMLType.F64, "F64", 1, 8],
  [GGMLType.I8, "I8", 1, 1],
  [GGMLType.I16, "I16", 1, 2],
  [GGMLType.I32, "I32", 1, 4],
  [GGMLType.I64, "I64", 1, 8],
  [GGMLType.Q4_0, "Q4_0", 32, 2 + 16],
  [GGMLType.Q4_1, "Q4_1", 32, 2 + 2 + 16],
  [GGMLType.Q5_0, "Q5_0", 32, 2 + 4 + 16],
  [GGMLType.Q5_1, "Q5_1", 32, 2 + 2 + 4 + 16],
  [GGMLType.Q8_0, "Q8_0", 32, 2 + 32],
  [GGMLType.Q8_1, "Q8_1", 32, 2 + 2 + 32],
  [GGMLType.Q2_K, "Q2_K", 256, 16 + 64 + 2 + 2],
  [GGMLType.Q3_K, "Q3_K", 256, 32 + 64 + 12 + 2],
  [GGMLType.Q4_K, "Q4_K", 256, 2 + 2 + 12 + 128],
  [GGMLType.Q5_K, "Q5_K", 256, 2 + 2 + 12 + 32 + 128],
  [GGMLType.Q6_K, "Q6_K", 256, 128 + 64 + 16 + 2],
  [GGMLType.Q8_K, "Q8_K", 256, 4 + 256 + 32],
  [GGMLType.IQ2_XXS, "IQ2_XXS", 256, 2 + 64],
  [GGMLType.IQ2_XS, "IQ2_XS", 256, 2 + 64 + 8],
  [GGMLType.IQ2_S, "IQ2_S", 256, 2 + 64 + 8 + 8],
  [GGMLType.IQ3_XXS, "IQ3_XXS", 256, 2 + 96],
  [GGMLType.IQ3_S, "IQ3_S", 256, 2 + 64 + 8 + 32 + 4],
  [GGMLType.IQ1_S, "IQ1_S", 256, 2 + 32 + 16],
  [GGMLType.IQ1_M, "IQ1_M", 256, 32 + 16 + 8],
  [GGMLType.IQ4_NL, "IQ4_NL", 32, 2 + 16],
  [GGMLType.IQ4_XS, "IQ4_XS", 256, 2 + 2 + 4 + 128],
  [GGMLType.TQ1_0, "TQ1_0", 256, 48 + 4 + 2],
  [GGMLType.TQ2_0, "TQ2_0", 256, 64 + 2],
];

const TRAITS = new Map<number, GGMLTypeTraits>(
  TRAITS_TABLE.map(([type, name, blockSize, bytesPerBlock]) => [
    type,
    { type, name, blockSize, bytesPerBlock, quantized: blockSize > 1 },
  ]),
);

export function isKnownGGMLType(type: number): type is GGMLType {
  return TRAITS.has(type);
}

/** Traits of a ggml type; throws for a type number ggml does not define (or no longer uses). */
export function typeTraits(type: GGMLType | number): GGMLTypeTraits {
  const t = TRAITS.get(type);
  if (!t) throw new RangeError(`unknown ggml tensor type ${type}`);
  return t;
}

export function typeName(type: GGMLType | number): string {
  return TRAITS.get(type)?.name ?? `type ${type}`;
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Bytes a tensor of this type and shape (ggml order, dims[0] innermost) occupies. */
export function tensorBytes(type: GGMLType | number, dims: readonly number[]): number {
  const t = typeTraits(type);
  const ne0 = dims[0] ?? 1;
  if (ne0 % t.blockSize !== 0) {
    throw new RangeError(`${t.name} tensor's first dimension ${ne0} is not a multiple of its block size ${t.blockSize}`);
  }
  const bytes = (ne0 / t.blockSize) * t.bytesPerBlock * elementCount(dims.slice(1));
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`tensor of shape [${dims.join(", ")}] is too large`);
  return bytes;
}
