// `valar tokenize REF TEXT`: the ids the model's tokenizer gives (BOS included, as for a prompt);
// with --verbose one line per id with its text.

import { createTokenizer } from "../engine/tokenizer/index.ts";
import { parseCommandArgs } from "./args.ts";
import { openModelArg } from "./model-arg.ts";

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    verbose: { type: "boolean", short: "v" },
    "no-bos": { type: "boolean" },
    special: { type: "boolean" },
  }, ["REF", "TEXT"]);
  const model = await openModelArg(positionals[0]);
  try {
    const tokenizer = createTokenizer(model);
    const ids = tokenizer.encode(positionals[1], {
      addBos: values["no-bos"] ? false : undefined,
      parseSpecial: values.special === true,
    });
    if (!values.verbose) {
      console.log(`[${ids.join(", ")}]`);
      return 0;
    }
    const width = String(Math.max(0, ...ids)).length;
    for (const id of ids) {
      const piece = tokenizer.decode([id], { skipSpecial: false });
      console.log(`${String(id).padStart(width)}  ${JSON.stringify(piece).padEnd(16)}  ${tokenizer.tokenText(id)}`);
    }
    console.error(`${ids.length} tokens`);
    return 0;
  } finally {
    model.close();
  }
}
