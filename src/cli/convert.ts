// `valar convert DIR OUT.gguf`: a Hugging Face safetensors directory (or a GGUF file) written as a
// GGUF file that llama.cpp and valar load.

import { convertToGGUF } from "../engine/model/convert.ts";
import { openModel } from "../engine/model/open.ts";
import { formatBytes } from "../hub/progress.ts";
import { parseCommandArgs, UsageError } from "./args.ts";
import { statSync } from "node:fs";

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, { force: { type: "boolean", short: "f" }, name: { type: "string" } }, ["DIR", "OUT.gguf"]);
  const [source, out] = positionals;
  if (!out.toLowerCase().endsWith(".gguf")) throw new UsageError(`output "${out}" should end with .gguf`);
  const model = openModel(source);
  try {
    const result = await convertToGGUF(model, out, { overwrite: values.force === true, name: values.name as string | undefined });
    console.log(`${result.path}: ${result.tensorCount} tensors, ${result.metadataCount} metadata keys, ${formatBytes(statSync(result.path).size)}`);
    return 0;
  } finally {
    model.close();
  }
}
