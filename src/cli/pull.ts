// `valar pull hf:OWNER/REPO/FILE [--dir DIR]`: download a model file into the models directory.

import { pull } from "../hub/pull.ts";
import { parseCommandArgs } from "./args.ts";

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, { dir: { type: "string" } }, ["REF"]);
  const result = await pull(positionals[0], { dir: (values.dir as string | undefined) ?? process.env.VALAR_MODELS_DIR ?? "models" });
  if (!result.downloaded) process.stderr.write(`already downloaded: ${result.path}\n`);
  else if (result.sha256) process.stderr.write(`verified sha256 ${result.sha256}\n`);
  console.log(result.path);
  return 0;
}
