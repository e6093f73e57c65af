// A byte source over a file on disk: positioned reads on an open descriptor, so a 60 MB model is
// never copied into memory whole.

import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { ByteSource } from "./byte-source.ts";
import { ModelFileError } from "./errors.ts";

export function openFileSource(path: string): ByteSource {
  const fd = openSync(path, "r");
  const size = fstatSync(fd).size;
  let closed = false;
  return {
    name: path,
    size,
    read(offset, length) {
      if (closed) throw new ModelFileError(path, "read after the model was closed");
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, out, done, length - done, offset + done);
        if (n === 0) throw new ModelFileError(path, `file shrank: unexpected end of file at byte ${offset + done}`);
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
