// GGUF writer (version 3, little-endian), laid out as llama.cpp's gguf writer does: header,
// metadata, tensor infos, padding to the alignment, then each tensor's data padded to the
// alignment. The header is built in memory; tensor data is streamed to the file one tensor at a
// time (a tensor may be given as a function, so a converter never holds all weights at once).

import { closeSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { tensorBytes, typeName } from "./ggml-types.ts";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC } from "./gguf-parse.ts";
import { typedValue, type GGUFMetadataInput, type GGUFTypedValue } from "./gguf-values.ts";
import { GGUFValueType, type GGMLType, type GGUFValue } from "./types.ts";

export { gguf, type GGUFTypedValue, type GGUFMetadataInput } from "./gguf-values.ts";

export interface GGUFTensorInput {
  name: string;
  type: GGMLType;
  /** ggml order: dims[0] innermost. */
  dims: number[];
  /** Bytes in the stored type; a function is called once, when the tensor is written. */
  data: Uint8Array | (() => Uint8Array);
}

export type GGUFMetadataEntries =
  | Map<string, GGUFMetadataInput>
  | Iterable<readonly [string, GGUFMetadataInput]>
  | Record<string, GGUFMetadataInput>;

/** Growable little-endian byte buffer for the header. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      bigger.set(this.buf.subarray(0, this.length));
      this.buf = bigger;
      this.view = new DataView(bigger.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  u8(v: number) { const at = this.reserve(1); this.view.setUint8(at, v); }
  i8(v: number) { const at = this.reserve(1); this.view.setInt8(at, v); }
  u16(v: number) { const at = this.reserve(2); this.view.setUint16(at, v, true); }
  i16(v: number) { const at = this.reserve(2); this.view.setInt16(at, v, true); }
  u32(v: number) { const at = this.reserve(4); this.view.setUint32(at, v, true); }
  i32(v: number) { const at = this.reserve(4); this.view.setInt32(at, v, true); }
  f32(v: number) { const at = this.reserve(4); this.view.setFloat32(at, v, true); }
  f64(v: number) { const at = this.reserve(8); this.view.setFloat64(at, v, true); }
  u64(v: number | bigint) { const at = this.reserve(8); this.view.setBigUint64(at, BigInt(v), true); }
  i64(v: number | bigint) { const at = this.reserve(8); this.view.setBigInt64(at, BigInt(v), true); }
  raw(b: Uint8Array) { const at = this.reserve(b.length); this.buf.set(b, at); }
  string(s: string) { const b = utf8.encode(s); this.u64(b.length); this.raw(b); }
  bytes(): Uint8Array { return this.buf.subarray(0, this.length); }
}

const utf8 = new TextEncoder();

function num(v: GGUFValue, key: string): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "boolean") return v ? 1 : 0;
  throw new TypeError(`metadata "${key}": expected a number, got ${typeof v}`);
}

// How each scalar type is encoded.
const ENCODERS: Record<number, (w: ByteWriter, v: GGUFValue, key: string) => void> = {
  [GGUFValueType.UINT8]: (w, v, k) => w.u8(num(v, k)),
  [GGUFValueType.INT8]: (w, v, k) => w.i8(num(v, k)),
  [GGUFValueType.UINT16]: (w, v, k) => w.u16(num(v, k)),
  [GGUFValueType.INT16]: (w, v, k) => w.i16(num(v, k)),
  [GGUFValueType.UINT32]: (w, v, k) => w.u32(num(v, k)),
  [GGUFValueType.INT32]: (w, v, k) => w.i32(num(v, k)),
  [GGUFValueType.FLOAT32]: (w, v, k) => w.f32(num(v, k)),
  [GGUFValueType.FLOAT64]: (w, v, k) => w.f64(num(v, k)),
  [GGUFValueType.BOOL]: (w, v, k) => w.u8(num(v, k) ? 1 : 0),
  [GGUFValueType.UINT64]: (w, v, k) => w.u64(typeof v === "bigint" ? v : num(v, k)),
  [GGUFValueType.INT64]: (w, v, k) => w.i64(typeof v === "bigint" ? v : num(v, k)),
  [GGUFValueType.STRING]: (w, v, k) => {
    if (typeof v !== "string") throw new TypeError(`metadata "${k}": expected a string, got ${typeof v}`);
    w.string(v);
  },
};

function writeValue(w: ByteWriter, key: string, tv: GGUFTypedValue) {
  if (tv.type !== GGUFValueType.ARRAY) {
    const enc = ENCODERS[tv.type];
    if (!enc) throw new TypeError(`metadata "${key}": unknown GGUF value type ${tv.type}`);
    enc(w, tv.value, key);
    return;
  }
  const v = tv.value;
  if (typeof v !== "object" || !("length" in v)) throw new TypeError(`metadata "${key}": expected an array`);
  const itemType = tv.itemType!;
  w.u32(itemType);
  w.u64(v.length);
  const items = v as ArrayLike<GGUFValue>;
  if (itemType === GGUFValueType.ARRAY) {
    for (let i = 0; i < items.length; i++) {
      // Each inner array carries its own item type and count (no per-item type tag).
      const inner = typedValue(key, items[i]);
      if (inner.type !== GGUFValueType.ARRAY) throw new TypeError(`metadata "${key}": an array of arrays holds a non-array item`);
      writeValue(w, key, inner);
    }
    return;
  }
  const enc = ENCODERS[itemType];
  if (!enc) throw new TypeError(`metadata "${key}": unknown GGUF array item type ${itemType}`);
  for (let i = 0; i < items.length; i++) enc(w, items[i], key);
}

function entriesOf(metadata: GGUFMetadataEntries): [string, GGUFMetadataInput][] {
  if (metadata instanceof Map) return [...metadata];
  if (Symbol.iterator in metadata) return [...(metadata as Iterable<readonly [string, GGUFMetadataInput]>)].map(([k, v]) => [k, v]);
  return Object.entries(metadata);
}

const pad = (n: number, alignment: number) => Math.ceil(n / alignment) * alignment;

/**
 * Writes a GGUF v3 file. `general.alignment` is honoured when given (as a uint32), else the
 * default 32 is used and not written, as llama.cpp's converter does. Written to a temporary
 * name and renamed, so a failure leaves no half-written model behind.
 */
export function writeGGUF(path: string, metadata: GGUFMetadataEntries, tensors: readonly GGUFTensorInput[]): void {
  const entries = entriesOf(metadata).map(([k, v]) => [k, typedValue(k, v)] as const);
  const alignEntry = entries.find(([k]) => k === "general.alignment")?.[1];
  const alignment = alignEntry ? num(alignEntry.value, "general.alignment") : GGUF_DEFAULT_ALIGNMENT;
  if (!(alignment > 0 && (alignment & (alignment - 1)) === 0)) throw new RangeError(`general.alignment ${alignment} is not a power of two`);

  const names = new Set<string>();
  const sizes = tensors.map((t) => {
    if (names.has(t.name)) throw new RangeError(`duplicate tensor name "${t.name}"`);
    names.add(t.name);
    return tensorBytes(t.type, t.dims);
  });

  const h = new ByteWriter();
  h.u32(GGUF_MAGIC);
  h.u32(3);
  h.u64(tensors.length);
  h.u64(entries.length);
  for (const [key, tv] of entries) {
    h.string(key);
    h.u32(tv.type);
    writeValue(h, key, tv);
  }
  let rel = 0;
  tensors.forEach((t, i) => {
    h.string(t.name);
    h.u32(t.dims.length);
    for (const d of t.dims) h.u64(d);
    h.u32(t.type);
    h.u64(rel);
    rel += pad(sizes[i], alignment);
  });
  const header = h.bytes();

  const tmp = `${path}.partial`;
  const fd = openSync(tmp, "w");
  let open = true;
  const writeAll = (b: Uint8Array) => {
    for (let done = 0; done < b.length; ) done += writeSync(fd, b, done, b.length - done);
  };
  try {
    writeAll(header);
    const zeros = new Uint8Array(alignment);
    let pos = header.length;
    const align = () => {
      const gap = pad(pos, alignment) - pos;
      if (gap) writeAll(zeros.subarray(0, gap));
      pos += gap;
    };
    align();
    tensors.forEach((t, i) => {
      const data = typeof t.data === "function" ? t.data() : t.data;
      if (data.byteLength !== sizes[i]) {
        throw new RangeError(`tensor "${t.name}" (${typeName(t.type)} [${t.dims.join(", ")}]) needs ${sizes[i]} bytes, got ${data.byteLength}`);
      }
      writeAll(data);
      pos += data.byteLength;
      align();
    });
    closeSync(fd);
    open = false;
    renameSync(tmp, path);
  } catch (e) {
    if (open) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
}
