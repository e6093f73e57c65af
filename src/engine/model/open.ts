// One entry point for model references on disk: a .gguf file or a Hugging Face directory.
// (`hf:` references are resolved to a local path first, by the CLI's pull module.)

import { existsSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { ModelFileError } from "./errors.ts";
import { openGGUF } from "./gguf.ts";
import { openHFDir } from "./hf-dir.ts";
import type { ModelFile } from "./types.ts";

/** Openers by file extension. */
const FILE_OPENERS: Record<string, (path: string) => ModelFile> = {
  ".gguf": openGGUF,
};

export function openModel(ref: string): ModelFile {
  if (!existsSync(ref)) throw new ModelFileError(ref, "no such file or directory");
  if (statSync(ref).isDirectory()) {
    if (!existsSync(join(ref, "config.json"))) {
      throw new ModelFileError(ref, "directory has no config.json (expected a Hugging Face model directory with config.json and *.safetensors)");
    }
    return openHFDir(ref);
  }
  const ext = extname(ref).toLowerCase();
  const open = FILE_OPENERS[ext];
  if (!open) {
    throw new ModelFileError(ref, `unknown model file extension "${ext || "(none)"}" (expected ${Object.keys(FILE_OPENERS).join(", ")} or a Hugging Face directory)`);
  }
  return open(ref);
}
