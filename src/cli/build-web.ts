// `valar build-web OUT`: the demo page and the embeddable engine as static files, for any web
// host (the server serves the same files at /demo/).

import { join } from "node:path";
import { writeWeb } from "../browser/build.ts";
import { parseCommandArgs } from "./args.ts";

export async function run(argv: string[]): Promise<number> {
  const { positionals } = parseCommandArgs(argv, {}, ["OUT"]);
  const out = positionals[0];
  const names = await writeWeb(out);
  for (const name of names) console.log(join(out, name));
  return 0;
}
