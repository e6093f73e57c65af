// safetensors header reader. A file is: u64 little-endian header length N, N bytes of JSON
// ({ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": {...} }), then the data;
// offsets are relative to the end of the header. Only the header is read here.

import { ModelFileError } from "./errors.ts";
import { elementCount, typeTraits } from "./ggml-types.ts";
import type { ByteSource } from "./byte-source.ts";
import { GGMLType } from "./types.ts";

/** safetensors dtypes that map onto a ggml type. */
const DTYPES: Record<string, GGMLType> = {
  F32: GGMLType.F32, F16: GGMLType.F16, BF16: GGMLType.BF16, F64: GGMLType.F64,
  I8: GGMLType.I8, I16: GGMLType.I16, I32: GGMLType.I32, I64: GGMLType.I64,
};

/** Headers are JSON of a few hundred bytes per tensor; anything this big is not a header. */
const MAX_HEADER_BYTES = 100 << 20;

export interface SafetensorsTensor {
  /** Name as stored (Hugging Face naming). */
  name: string;
  dtype: string;
  type: GGMLType;
  /** As stored: row-major, outermost first (the reverse of ggml's order). */
  shape: number[];
  /** Absolute byte offset in the file. */
  offset: number;
  nbytes: number;
}

export interface SafetensorsHeader {
  tensors: SafetensorsTensor[];
  metadata: Record<string, string>;
  dataOffset: number;
}

export function readSafetensorsHeader(src: ByteSource): SafetensorsHeader {
  const fail = (problem: string): never => {
    throw new ModelFileError(src.name, problem);
  };
  if (src.size < 8) fail(`truncated file: a safetensors file starts with an 8-byte header length, but the file is ${src.size} bytes`);
  const n = new DataView(src.read(0, 8).buffer).getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER_BYTES, src.size - 8))) {
    fail(`header length ${n} is absurd or runs past the end of the file (${src.size} bytes); not a safetensors file?`);
  }
  const dataOffset = 8 + Number(n);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(src.read(8, Number(n))));
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) fail("header is not a JSON object");

  const tensors: SafetensorsTensor[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e?.dtype !== "string" || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets) || e.data_offsets.length !== 2) {
      fail(`tensor "${name}" has a malformed header entry`);
    }
    const dtype = e.dtype as string;
    const type = DTYPES[dtype];
    if (type === undefined) fail(`tensor "${name}" has unsupported dtype ${dtype} (supported: ${Object.keys(DTYPES).join(", ")})`);
    const shape = e.shape as number[];
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`tensor "${name}" has an invalid shape [${shape.join(", ")}]`);
    const [begin, end] = e.data_offsets as number[];
    const nbytes = elementCount(shape) * typeTraits(type).bytesPerBlock;
    if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || end - begin !== nbytes || begin < 0) {
      fail(`tensor "${name}" (${dtype} [${shape.join(", ")}], ${nbytes} bytes) has inconsistent data offsets [${begin}, ${end}]`);
    }
    if (dataOffset + end > src.size) {
      fail(`tensor "${name}" (${nbytes} bytes at offset ${dataOffset + begin}) extends past the end of the file (${src.size} bytes)`);
    }
    tensors.push({ name, dtype, type, shape, offset: dataOffset + begin, nbytes });
  }
  return { tensors, metadata, dataOffset };
}
