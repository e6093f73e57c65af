// Random access to the bytes of a model file without loading it whole: the readers parse headers
// through this, and tensor data is read by offset only when asked for. This module has no Node
// imports so the parsers run in a browser too (over a fetched buffer); the file-backed source is
// in file-source.ts.

export interface ByteSource {
  /** Name used in error messages (the file path). */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes from `offset` (the caller checks bounds). */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

export function memorySource(name: string, bytes: Uint8Array): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    read: (offset, length) => bytes.slice(offset, offset + length),
    close() {},
  };
}

/**
 * A Blob (a dropped File, a cached download) read in slices as they are asked for, so a file
 * larger than one ArrayBuffer loads. FileReaderSync exists only in Web Workers: the browser
 * engine worker's source.
 */
export function blobSource(name: string, blob: Blob): ByteSource {
  const reader = new (globalThis as unknown as { FileReaderSync: new () => { readAsArrayBuffer(b: Blob): ArrayBuffer } }).FileReaderSync();
  return {
    name,
    size: blob.size,
    read: (offset, length) => new Uint8Array(reader.readAsArrayBuffer(blob.slice(offset, offset + length))),
    close() {},
  };
}
