// GGUF files on disk. The format itself is parsed in gguf-parse.ts (usable without a file
// system); this module opens a path and hands its bytes to the parser lazily.

import { ModelFileError } from "./errors.ts";
import { openFileSource } from "./file-source.ts";
import { parseGGUF, type GGUFFile } from "./gguf-parse.ts";
import type { ByteSource } from "./byte-source.ts";

export { ModelFileError } from "./errors.ts";
export { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, parseGGUF, type GGUFFile } from "./gguf-parse.ts";

/** Opens a .gguf file; only its header is read now. */
export function openGGUF(path: string): GGUFFile {
  let src: ByteSource;
  try {
    src = openFileSource(path);
  } catch (e) {
    throw new ModelFileError(path, `cannot open: ${(e as Error).message}`);
  }
  try {
    return parseGGUF(src);
  } catch (e) {
    src.close();
    throw e;
  }
}
