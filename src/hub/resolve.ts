// Turns a model reference into something on disk: a path is checked, an `hf:` ref is pulled into
// the models directory unless already there.

import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { pull, type PullOptions } from "./pull.ts";
import { isHfRef } from "./ref.ts";

export class ModelRefError extends Error {
  override name = "ModelRefError";
}

/** A directory holds a Hugging Face checkpoint when it has these. */
function isCheckpointDir(path: string): boolean {
  return existsSync(join(path, "config.json")) &&
    readdirSync(path).some((f) => f.endsWith(".safetensors") || f === "model.safetensors.index.json");
}

/** Models found directly in `dir`: `.gguf` files and checkpoint directories, sorted by name. */
export function findLocalModels(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  return readdirSync(dir)
    .sort()
    .map((name) => join(dir, name))
    .filter((path) => {
      const st = statSync(path);
      return (st.isFile() && path.endsWith(".gguf")) || (st.isDirectory() && isCheckpointDir(path));
    });
}

/** Local path of a model reference, downloading `hf:` refs into `modelsDir` when missing. */
export async function resolveModelRef(ref: string, modelsDir: string, pullOptions: PullOptions = {}): Promise<string> {
  if (isHfRef(ref)) return (await pull(ref, { ...pullOptions, dir: modelsDir })).path;
  if (!existsSync(ref)) throw new ModelRefError(`${ref}: no such file or directory`);
  const st = statSync(ref);
  if (st.isDirectory() && !isCheckpointDir(ref)) {
    throw new ModelRefError(`${ref}: directory has no config.json and *.safetensors (not a Hugging Face checkpoint)`);
  }
  return ref;
}
