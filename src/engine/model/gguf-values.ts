// Typed GGUF metadata values. JavaScript cannot tell uint32 from int32 from float32, and
// llama.cpp checks the stored type of every key it reads, so values carry their GGUF type
// explicitly where it matters; plain values get the type llama.cpp expects for well-known keys,
// else a default inferred from the value.

import { GGUFValueType, type GGUFValue } from "./types.ts";

export interface GGUFTypedValue {
  type: GGUFValueType;
  /** Element type, for `type === ARRAY`. */
  itemType?: GGUFValueType;
  value: GGUFValue;
}

export type GGUFMetadataInput = GGUFValue | GGUFTypedValue;

// Constructors for explicit types: `{ "llama.block_count": gguf.u32(6) }`.
const scalar = (type: GGUFValueType) => (value: number | bigint | boolean | string): GGUFTypedValue => ({ type, value });
const array = (itemType: GGUFValueType) => (value: GGUFValue[] | ArrayLike<number>): GGUFTypedValue => ({ type: GGUFValueType.ARRAY, itemType, value });
export const gguf = {
  u8: scalar(GGUFValueType.UINT8), i8: scalar(GGUFValueType.INT8),
  u16: scalar(GGUFValueType.UINT16), i16: scalar(GGUFValueType.INT16),
  u32: scalar(GGUFValueType.UINT32), i32: scalar(GGUFValueType.INT32),
  u64: scalar(GGUFValueType.UINT64), i64: scalar(GGUFValueType.INT64),
  f32: scalar(GGUFValueType.FLOAT32), f64: scalar(GGUFValueType.FLOAT64),
  bool: scalar(GGUFValueType.BOOL), str: scalar(GGUFValueType.STRING),
  arrU8: array(GGUFValueType.UINT8), arrI32: array(GGUFValueType.INT32), arrU32: array(GGUFValueType.UINT32),
  arrF32: array(GGUFValueType.FLOAT32), arrStr: array(GGUFValueType.STRING),
  /** An array of any element type. */
  arr: (itemType: GGUFValueType, value: GGUFValue[] | ArrayLike<number>): GGUFTypedValue => ({ type: GGUFValueType.ARRAY, itemType, value }),
};

export function isTypedValue(v: unknown): v is GGUFTypedValue {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v) && "type" in v && "value" in v;
}

// Types llama.cpp requires for keys whose plain JS value would infer wrongly (an integral float
// like rope.freq_base = 10000, token ids that must be uint32, per-token arrays). Matched on the
// key's suffix after the architecture prefix, or on the full key.
const KNOWN_KEY_TYPES: [suffix: string, type: GGUFValueType, itemType?: GGUFValueType][] = [
  ["general.alignment", GGUFValueType.UINT32],
  ["general.file_type", GGUFValueType.UINT32],
  ["general.quantization_version", GGUFValueType.UINT32],
  [".rope.freq_base", GGUFValueType.FLOAT32],
  [".rope.scaling.factor", GGUFValueType.FLOAT32],
  [".rope.scaling.low_freq_factor", GGUFValueType.FLOAT32],
  [".rope.scaling.high_freq_factor", GGUFValueType.FLOAT32],
  [".attention.layer_norm_rms_epsilon", GGUFValueType.FLOAT32],
  [".attention.layer_norm_epsilon", GGUFValueType.FLOAT32],
  ["tokenizer.ggml.scores", GGUFValueType.ARRAY, GGUFValueType.FLOAT32],
  ["tokenizer.ggml.token_type", GGUFValueType.ARRAY, GGUFValueType.INT32],
  ["tokenizer.ggml.tokens", GGUFValueType.ARRAY, GGUFValueType.STRING],
  ["tokenizer.ggml.merges", GGUFValueType.ARRAY, GGUFValueType.STRING],
  ["tokenizer.ggml.bos_token_id", GGUFValueType.UINT32],
  ["tokenizer.ggml.eos_token_id", GGUFValueType.UINT32],
  ["tokenizer.ggml.unknown_token_id", GGUFValueType.UINT32],
  ["tokenizer.ggml.padding_token_id", GGUFValueType.UINT32],
  ["tokenizer.ggml.separator_token_id", GGUFValueType.UINT32],
  ["tokenizer.ggml.eot_token_id", GGUFValueType.UINT32],
  ["tokenizer.ggml.eom_token_id", GGUFValueType.UINT32],
];

function knownKeyType(key: string): [GGUFValueType, GGUFValueType | undefined] | undefined {
  for (const [suffix, type, itemType] of KNOWN_KEY_TYPES) {
    if (key === suffix || (suffix.startsWith(".") && key.endsWith(suffix))) return [type, itemType];
  }
  return undefined;
}

const TYPED_ARRAY_ITEM_TYPES: [new (...a: never[]) => ArrayBufferView, GGUFValueType][] = [
  [Uint8Array, GGUFValueType.UINT8], [Int8Array, GGUFValueType.INT8],
  [Uint16Array, GGUFValueType.UINT16], [Int16Array, GGUFValueType.INT16],
  [Uint32Array, GGUFValueType.UINT32], [Int32Array, GGUFValueType.INT32],
  [Float32Array, GGUFValueType.FLOAT32], [Float64Array, GGUFValueType.FLOAT64],
];

/** The GGUF type a plain value gets when nothing says otherwise. */
export function inferType(value: GGUFValue): GGUFTypedValue {
  switch (typeof value) {
    case "string": return { type: GGUFValueType.STRING, value };
    case "boolean": return { type: GGUFValueType.BOOL, value };
    case "bigint": return { type: value < 0n ? GGUFValueType.INT64 : GGUFValueType.UINT64, value };
    case "number":
      if (!Number.isInteger(value)) return { type: GGUFValueType.FLOAT32, value };
      if (value >= 0 && value <= 0xffffffff) return { type: GGUFValueType.UINT32, value };
      if (value < 0 && value >= -0x80000000) return { type: GGUFValueType.INT32, value };
      return { type: value < 0 ? GGUFValueType.INT64 : GGUFValueType.UINT64, value };
  }
  if (ArrayBuffer.isView(value)) {
    const match = TYPED_ARRAY_ITEM_TYPES.find(([ctor]) => value instanceof ctor);
    if (!match) throw new TypeError(`unsupported typed array ${value.constructor.name} as a GGUF value`);
    return { type: GGUFValueType.ARRAY, itemType: match[1], value };
  }
  const items = Array.from(value as ArrayLike<GGUFValue>);
  if (items.length === 0) return { type: GGUFValueType.ARRAY, itemType: GGUFValueType.UINT32, value: items };
  // An array's items share one type: numbers get the narrowest type that holds them all.
  const kinds = new Set(items.map((v) => (Array.isArray(v) || ArrayBuffer.isView(v) ? "array" : typeof v)));
  if (kinds.size > 1) throw new TypeError(`GGUF array items must all be of one kind, got ${[...kinds].join(" and ")}`);
  const kind = [...kinds][0];
  let itemType: GGUFValueType;
  if (kind !== "number") itemType = inferType(items[0]).type;
  else {
    const nums = items as number[];
    if (!nums.every(Number.isInteger)) itemType = GGUFValueType.FLOAT32;
    else if (nums.every((n) => n >= 0 && n <= 0xffffffff)) itemType = GGUFValueType.UINT32;
    else if (nums.every((n) => n >= -0x80000000 && n <= 0x7fffffff)) itemType = GGUFValueType.INT32;
    else itemType = GGUFValueType.INT64;
  }
  return { type: GGUFValueType.ARRAY, itemType, value: items };
}

/** The typed form of a metadata entry: explicit types win, then the well-known key table, then inference. */
export function typedValue(key: string, v: GGUFMetadataInput): GGUFTypedValue {
  if (isTypedValue(v)) {
    if (v.type === GGUFValueType.ARRAY && v.itemType === undefined) return { ...inferType(v.value), ...v, itemType: inferType(v.value).itemType };
    return v;
  }
  const known = knownKeyType(key);
  if (known) return { type: known[0], itemType: known[1], value: v };
  return inferType(v);
}
