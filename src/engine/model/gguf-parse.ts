// GGUF parser (versions 2 and 3, little-endian) over any byte source, with no Node imports so it
// also runs in a browser. Parses the header, metadata and tensor infos through a buffered cursor
// that pulls only the bytes it needs, so opening a file never touches its weights; tensor data
// is read by offset when asked for. (`openGGUF` in gguf.ts opens a file.)
//
// Layout: magic "GGUF", u32 version, u64 tensor count, u64 metadata count, metadata entries
// (string key, u32 type, value), tensor infos (name, u32 n_dims, u64 dims[], u32 type,
// u64 offset relative to the data section), padding to `general.alignment`, tensor data.

import { ModelFileError } from "./errors.ts";
import { isKnownGGMLType, tensorBytes, typeName } from "./ggml-types.ts";
import type { ByteSource } from "./byte-source.ts";
import type { GGUFTypedValue } from "./gguf-values.ts";
import { GGUFValueType, type GGMLType, type GGUFValue, type ModelFile, type TensorInfo } from "./types.ts";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
const SUPPORTED_VERSIONS = [2, 3];
/** ggml tensors have at most 4 dimensions (GGML_MAX_DIMS). */
const MAX_DIMS = 4;
/** Bytes a header read asks for at a time: small, so parsing stops close to the end of the header. */
const CHUNK = 64 << 10;

/** A GGUF file: the neutral `ModelFile` plus what only GGUF has. */
export interface GGUFFile extends ModelFile {
  format: "gguf";
  version: number;
  alignment: number;
  /** Absolute offset of the tensor data section. */
  dataOffset: number;
  /** File size in bytes. */
  fileBytes: number;
  /** Stored GGUF type of every metadata key (so a copy can keep them exactly). */
  metadataTypes: Map<string, { type: GGUFValueType; itemType?: GGUFValueType }>;
  /** Metadata as typed values, in file order, ready for `writeGGUF`. */
  typedMetadata(): Map<string, GGUFTypedValue>;
}

// Fixed-size scalar types: [bytes, DataView getter, typed array for arrays of them].
type ScalarReader = (v: DataView, at: number) => number | bigint | boolean;
const SCALARS: Partial<Record<GGUFValueType, [number, ScalarReader, (new (n: number) => { [i: number]: number }) | null]>> = {
  [GGUFValueType.UINT8]: [1, (v, o) => v.getUint8(o), Uint8Array],
  [GGUFValueType.INT8]: [1, (v, o) => v.getInt8(o), Int8Array],
  [GGUFValueType.UINT16]: [2, (v, o) => v.getUint16(o, true), Uint16Array],
  [GGUFValueType.INT16]: [2, (v, o) => v.getInt16(o, true), Int16Array],
  [GGUFValueType.UINT32]: [4, (v, o) => v.getUint32(o, true), Uint32Array],
  [GGUFValueType.INT32]: [4, (v, o) => v.getInt32(o, true), Int32Array],
  [GGUFValueType.FLOAT32]: [4, (v, o) => v.getFloat32(o, true), Float32Array],
  [GGUFValueType.FLOAT64]: [8, (v, o) => v.getFloat64(o, true), Float64Array],
  [GGUFValueType.BOOL]: [1, (v, o) => v.getUint8(o) !== 0, null],
  [GGUFValueType.UINT64]: [8, (v, o) => v.getBigUint64(o, true), null],
  [GGUFValueType.INT64]: [8, (v, o) => v.getBigInt64(o, true), null],
};
/** Smallest encoding of a value of each type, to reject counts the file cannot possibly hold. */
const MIN_BYTES: Record<number, number> = { [GGUFValueType.STRING]: 8, [GGUFValueType.ARRAY]: 12 };
const minBytes = (t: GGUFValueType) => SCALARS[t]?.[0] ?? MIN_BYTES[t] ?? 1;

// ignoreBOM: a token may be exactly U+FEFF, which must survive decoding.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** Sequential reader over a byte source that fetches it in chunks. */
class Cursor {
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private bufStart = 0;

  constructor(private readonly src: ByteSource, private readonly what: () => string) {}

  fail(problem: string): never {
    throw new ModelFileError(this.src.name, problem);
  }

  get remaining(): number {
    return this.src.size - this.pos;
  }

  /** Makes bytes [pos, pos+n) available and returns their index in the buffer. */
  private need(n: number): number {
    if (this.pos + n > this.src.size) {
      this.fail(`truncated file: ${this.what()} needs ${n} bytes at offset ${this.pos}, but the file is ${this.src.size} bytes`);
    }
    if (this.pos < this.bufStart || this.pos + n > this.bufStart + this.buf.length) {
      const len = Math.min(Math.max(n, CHUNK), this.src.size - this.pos);
      this.buf = this.src.read(this.pos, len);
      this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
      this.bufStart = this.pos;
    }
    const at = this.pos - this.bufStart;
    this.pos += n;
    return at;
  }

  u32(): number {
    const at = this.need(4); // before touching `view`: need() may replace the buffer
    return this.view.getUint32(at, true);
  }

  /** A u64 that must fit a JS number (counts, lengths, offsets). */
  u64(): number {
    const at = this.need(8);
    const v = this.view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`absurd value ${v} for ${this.what()} at offset ${this.pos - 8}`);
    return Number(v);
  }

  scalar(type: GGUFValueType): number | bigint | boolean {
    const [size, get] = SCALARS[type]!;
    const at = this.need(size);
    return get(this.view, at);
  }

  bytes(n: number): Uint8Array {
    const at = this.need(n);
    return this.buf.subarray(at, at + n);
  }

  string(): string {
    const len = this.u64();
    if (len > this.remaining) this.fail(`truncated file: string of ${len} bytes for ${this.what()} at offset ${this.pos - 8} runs past the end of the file`);
    return utf8.decode(this.bytes(len));
  }

  /** A count of items that each take at least `itemBytes`; rejects counts the file cannot hold. */
  count(itemBytes: number, of: string): number {
    const n = this.u64();
    if (n * itemBytes > this.remaining) this.fail(`absurd ${of} count ${n} at offset ${this.pos - 8}: the rest of the file (${this.remaining} bytes) cannot hold it`);
    return n;
  }
}

function valueType(c: Cursor, raw: number, where: string): GGUFValueType {
  if (!(raw in GGUFValueType) || typeof GGUFValueType[raw] !== "string") c.fail(`unknown metadata value type ${raw} for ${where}`);
  return raw as GGUFValueType;
}

function readValue(c: Cursor, type: GGUFValueType, key: string): { value: GGUFValue; itemType?: GGUFValueType } {
  if (type === GGUFValueType.STRING) return { value: c.string() };
  if (type !== GGUFValueType.ARRAY) return { value: c.scalar(type) };
  const itemType = valueType(c, c.u32(), `items of ${key}`);
  const n = c.count(minBytes(itemType), `array item (${key})`);
  const scalar = SCALARS[itemType];
  if (scalar?.[2]) {
    // Numeric arrays come back as typed arrays: vocabularies have tens of thousands of scores.
    const [size, , Typed] = scalar;
    const raw = c.bytes(n * size);
    const aligned = raw.slice(); // copy: the cursor's buffer is reused, and typed arrays need alignment
    return { value: new (Typed as unknown as new (b: ArrayBuffer, o: number, n: number) => ArrayLike<number>)(aligned.buffer, 0, n), itemType };
  }
  const items: GGUFValue[] = new Array(n);
  for (let i = 0; i < n; i++) items[i] = readValue(c, itemType, key).value;
  return { value: items, itemType };
}

/** Parses a GGUF header from any byte source; tensor data is read lazily through it. */
export function parseGGUF(src: ByteSource): GGUFFile {
  let what = "the header";
  const c = new Cursor(src, () => what);
  const magic = c.u32();
  if (magic !== GGUF_MAGIC) {
    const shown = [0, 8, 16, 24].map((s) => (magic >>> s) & 0xff);
    const printable = shown.every((b) => b >= 32 && b < 127) ? ` ("${String.fromCharCode(...shown)}")` : "";
    c.fail(`not a GGUF file: wrong magic 0x${magic.toString(16).padStart(8, "0")}${printable}, expected "GGUF"`);
  }
  const version = c.u32();
  if (!SUPPORTED_VERSIONS.includes(version)) {
    const bigEndian = (version & 0xffff) === 0 && SUPPORTED_VERSIONS.includes(version >>> 24);
    c.fail(bigEndian
      ? `big-endian GGUF files are not supported`
      : `unsupported GGUF version ${version} (supported: ${SUPPORTED_VERSIONS.join(", ")})`);
  }
  what = "the tensor count";
  const nTensors = c.count(8 + 4 + 4 + 8, "tensor");
  what = "the metadata count";
  const nKv = c.count(8 + 4, "metadata entry");

  const metadata = new Map<string, GGUFValue>();
  const metadataTypes = new Map<string, { type: GGUFValueType; itemType?: GGUFValueType }>();
  for (let i = 0; i < nKv; i++) {
    what = `the key of metadata entry ${i}`;
    const key = c.string();
    what = `metadata "${key}"`;
    const type = valueType(c, c.u32(), `"${key}"`);
    const { value, itemType } = readValue(c, type, key);
    if (metadata.has(key)) c.fail(`duplicate metadata key "${key}"`);
    metadata.set(key, value);
    metadataTypes.set(key, itemType === undefined ? { type } : { type, itemType });
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (metadata.has("general.alignment")) {
    const a = metadata.get("general.alignment");
    if (metadataTypes.get("general.alignment")!.type !== GGUFValueType.UINT32 || typeof a !== "number" || a === 0 || (a & (a - 1)) !== 0) {
      c.fail(`general.alignment must be a power-of-two uint32, got ${String(a)}`);
    }
    alignment = a as number;
  }

  const infos: { name: string; type: GGMLType; dims: number[]; rel: number }[] = [];
  for (let i = 0; i < nTensors; i++) {
    what = `the name of tensor ${i}`;
    const name = c.string();
    what = `tensor "${name}"`;
    const nDims = c.u32();
    if (nDims > MAX_DIMS) c.fail(`tensor "${name}" has ${nDims} dimensions (at most ${MAX_DIMS})`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.u64());
    const type = c.u32();
    if (!isKnownGGMLType(type)) c.fail(`tensor "${name}" has unknown tensor type ${type}`);
    const rel = c.u64();
    if (rel % alignment !== 0) c.fail(`tensor "${name}" data offset ${rel} is not a multiple of the alignment ${alignment}`);
    infos.push({ name, type, dims, rel });
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const tensors: TensorInfo[] = [];
  const byName = new Map<string, TensorInfo>();
  for (const { name, type, dims, rel } of infos) {
    let nbytes = 0;
    try {
      nbytes = tensorBytes(type, dims);
    } catch (e) {
      c.fail(`tensor "${name}": ${(e as Error).message}`);
    }
    const offset = dataOffset + rel;
    if (offset + nbytes > src.size) {
      c.fail(`tensor "${name}" (${typeName(type)} [${dims.join(", ")}], ${nbytes} bytes at offset ${offset}) extends past the end of the file (${src.size} bytes)`);
    }
    if (byName.has(name)) c.fail(`duplicate tensor name "${name}"`);
    const info: TensorInfo = { name, type, dims, offset, nbytes, file: src.name };
    tensors.push(info);
    byName.set(name, info);
  }

  return {
    path: src.name,
    format: "gguf",
    version,
    alignment,
    dataOffset,
    fileBytes: src.size,
    metadata,
    metadataTypes,
    tensors,
    typedMetadata() {
      const out = new Map<string, GGUFTypedValue>();
      for (const [key, value] of metadata) out.set(key, { ...metadataTypes.get(key)!, value });
      return out;
    },
    read(name) {
      const t = byName.get(name);
      if (!t) throw new ModelFileError(src.name, `no tensor named "${name}"`);
      return src.read(t.offset, t.nbytes);
    },
    close: () => src.close(),
  };
}
