// Uploading a model's tensors to the GPU once, in their stored format. Matrices keep their GGUF
// values (Q8_0 / Q4_0 rows regrouped into word-aligned quant and scale planes, interleaved in
// groups of 8 rows, see `toGpuRows`); small float vectors (norms, biases) become f32. Matrices
// that share a format and input length can be stacked (q|k|v, gate|up) so one dispatch computes
// them; a matrix larger than the storage binding limit is split by rows into parts.

import { GGMLType, type ModelFile, type TensorInfo } from "./model/types.ts";
import { WEIGHT_FORMATS, dequantize, formatOf, gpuRowBytes, rowBytes, rowGroup, toGpuRows } from "./quant.ts";
import { typeName } from "./model/ggml-types.ts";
import { uploadBytes, uploadF32 } from "./gpu/buffers.ts";

export interface MatrixPart {
  buffer: GPUBuffer;
  /** First output row held by this part. */
  row0: number;
  rows: number;
}

export interface Matrix {
  name: string;
  type: GGMLType;
  /** Input length (elements per row). */
  k: number;
  /** Output rows. */
  n: number;
  /** Bytes of one row as uploaded (the kernels' layout, `gpuRowBytes`). */
  rowBytes: number;
  parts: MatrixPart[];
}

/** Tensor bytes of the file uploaded so far, of `total` (what a loading bar shows). */
export type UploadProgress = (done: number, total: number) => void;

export class WeightUploader {
  readonly maxBinding: number;
  bytesUploaded = 0;
  /** The file's tensor bytes, and how many of them are on the device. */
  readonly tensorBytes: number;
  private tensorBytesDone = 0;
  private uploaded = new Set<string>();
  /** Every buffer uploaded, for disposal. */
  readonly buffers: GPUBuffer[] = [];
  private byName: Map<string, TensorInfo>;

  constructor(private device: GPUDevice, private file: ModelFile, private onProgress?: UploadProgress) {
    this.tensorBytes = file.tensors.reduce((a, t) => a + t.nbytes, 0);
    this.maxBinding = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    this.byName = new Map(file.tensors.map((t) => [t.name, t]));
    // refuse at load, naming the tensor, what no kernel reads (rather than mid-upload)
    const supported = new Set(Object.values(WEIGHT_FORMATS).map((f) => f.type));
    const odd = file.tensors.find((t) => !supported.has(t.type));
    if (odd) {
      throw new Error(`tensor ${odd.name} is stored as ${typeName(odd.type)}, a type the engine does not run (supported: ${Object.keys(WEIGHT_FORMATS).join(", ")})`);
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new Error(`model ${this.file.path} has no tensor ${name}`);
    return t;
  }

  /** A float vector (norm weight, bias), dequantized to f32 on the host. */
  vectorF32(name: string): Float32Array {
    const t = this.info(name);
    const n = t.dims.reduce((a, b) => a * b, 1);
    return dequantize(t.type, this.file.read(name), n);
  }

  vector(name: string): GPUBuffer {
    const v = this.vectorF32(name);
    this.bytesUploaded += v.byteLength;
    const b = uploadF32(this.device, v, name);
    this.buffers.push(b);
    this.advance([name]);
    return b;
  }

  /** Whether these matrices can be stacked into one (same format and input length, fits a binding). */
  stackable(names: string[]): boolean {
    const ts = names.map((n) => this.info(n));
    const same = ts.every((t) => t.type === ts[0].type && t.dims[0] === ts[0].dims[0]);
    if (!same) return false;
    const k = ts[0].dims[0];
    const G = rowGroup(ts[0].type);
    const rows = ts.reduce((a, t) => a + t.nbytes / rowBytes(t.type, k), 0);
    return Math.ceil(rows / G) * G * gpuRowBytes(ts[0].type, k) + 16 <= this.maxBinding;
  }

  private matrices = new Map<string, Matrix>();

  /** One matrix, or several stacked by rows (in order); uploaded once however often asked for. */
  matrix(names: string[]): Matrix {
    const key = names.join("|");
    let m = this.matrices.get(key);
    if (!m) {
      m = this.uploadMatrix(names);
      this.matrices.set(key, m);
    }
    return m;
  }

  private uploadMatrix(names: string[]): Matrix {
    const ts = names.map((n) => this.info(n));
    const type = ts[0].type;
    const k = ts[0].dims[0];
    const f = formatOf(type);
    for (const t of ts) {
      if (t.type !== type || t.dims[0] !== k) throw new Error(`cannot stack ${names.join(", ")}: formats or shapes differ`);
      if (t.dims[0] % f.blockElems !== 0) throw new Error(`${t.name}: row length ${t.dims[0]} is not a multiple of the ${f.name} block size`);
    }
    const storedRowBytes = (k / f.blockElems) * f.blockBytes;
    const n = ts.reduce((a, t) => a + t.nbytes / storedRowBytes, 0);
    const stored = ts.length === 1 ? this.file.read(names[0]) : concat(ts.map((t) => this.file.read(t.name)));
    const bytes = toGpuRows(type, stored, n, k);
    const rowBytes = gpuRowBytes(type, k);
    // parts start on a whole group of interleaved rows and hold the padded end of their last one
    const G = rowGroup(type);
    const rowsPerPart = Math.max(G, Math.floor((this.maxBinding - 16) / (rowBytes * G)) * G);
    const parts: MatrixPart[] = [];
    for (let row0 = 0; row0 < n; row0 += rowsPerPart) {
      const rows = Math.min(rowsPerPart, n - row0);
      const buffer = uploadBytes(this.device, bytes.subarray(row0 * rowBytes, (row0 + Math.ceil(rows / G) * G) * rowBytes), names.join("|"));
      parts.push({ buffer, row0, rows });
      this.buffers.push(buffer);
    }
    this.bytesUploaded += bytes.byteLength;
    this.advance(names);
    return { name: names.join("|"), type, k, n, rowBytes, parts };
  }

  /** Counts tensors once (a tied embedding is read twice), then reports. */
  private advance(names: string[]): void {
    for (const name of names) {
      if (this.uploaded.has(name)) continue;
      this.uploaded.add(name);
      this.tensorBytesDone += this.info(name).nbytes;
    }
    this.onProgress?.(this.tensorBytesDone, this.tensorBytes);
  }

  /** The end of the upload: tensors read on the host only (rope factors) count as done too. */
  finish(): void {
    this.tensorBytesDone = this.tensorBytes;
    this.onProgress?.(this.tensorBytes, this.tensorBytes);
  }
}

function concat(arrays: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(arrays.reduce((a, b) => a + b.byteLength, 0));
  let o = 0;
  for (const a of arrays) { out.set(a, o); o += a.byteLength; }
  return out;
}

export function destroyAll(buffers: GPUBuffer[]) {
  for (const b of buffers) b.destroy();
  buffers.length = 0;
}
