// `valar detokenize REF IDS`: the text of token ids, given as one list ("1, 15043 3186" or
// "[1, 15043]") or as several arguments.

import { createTokenizer } from "../engine/tokenizer/index.ts";
import { parseCommandArgs, UsageError } from "./args.ts";
import { openModelArg } from "./model-arg.ts";

/** Ids from text separated by commas and/or whitespace, optionally in brackets. */
export function parseIds(parts: string[]): number[] {
  const words = parts.join(" ").replace(/^\s*\[|\]\s*$/g, "").split(/[\s,]+/).filter((w) => w !== "");
  if (words.length === 0) throw new UsageError("no token ids given");
  return words.map((w) => {
    if (!/^\d+$/.test(w)) throw new UsageError(`"${w}" is not a token id (expected whole numbers separated by commas or spaces)`);
    return Number(w);
  });
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, { special: { type: "boolean" } }, ["REF", "IDS..."]);
  const ids = parseIds(positionals.slice(1));
  const model = await openModelArg(positionals[0]);
  try {
    const tokenizer = createTokenizer(model);
    const bad = ids.find((id) => id >= tokenizer.vocabSize);
    if (bad !== undefined) throw new UsageError(`token id ${bad} is out of range: the vocabulary has ${tokenizer.vocabSize} tokens (0..${tokenizer.vocabSize - 1})`);
    process.stdout.write(tokenizer.decode(ids, { skipSpecial: values.special !== true }) + "\n");
    return 0;
  } finally {
    model.close();
  }
}
