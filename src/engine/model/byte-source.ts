// Random access to the bytes of a model file without loading it whole: the readers parse headers
// through this, and tensor data is read by offset only when asked for. A file-backed source uses
// positioned reads on an open descriptor; a memory-backed one serves hosts without a file system
// (a browser that fetched the file) and tests.

import { closeSync, fstatSync, openSync, readSync } from "node:fs";

export interface ByteSource {
  /** Name used in error messages (the file path). */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes from `offset` (the caller checks bounds). */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

export function openFileSource(path: string): ByteSource {
  const fd = openSync(path, "r");
  const size = fstatSync(fd).size;
  let closed = false;
  return {
    name: path,
    size,
    read(offset, length) {
      if (closed) throw new Error(`${path}: read after close`);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, out, done, length - done, offset + done);
        if (n === 0) throw new Error(`${path}: unexpected end of file at byte ${offset + done}`);
        done += n;
      }
      return out;
    },
    close() {
      if (!closed) closeSync(fd);
      closed = true;
    },
  };
}

export function memorySource(name: string, bytes: Uint8Array): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    read: (offset, length) => bytes.slice(offset, offset + length),
    close() {},
  };
}
