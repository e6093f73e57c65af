// `valar info REF`: architecture, sizes, context length, tokenizer, chat template, tensors by type.

import { describeModel, formatDescription } from "../engine/model/describe.ts";
import { parseCommandArgs } from "./args.ts";
import { openModelArg } from "./model-arg.ts";

export async function run(argv: string[]): Promise<number> {
  const { positionals } = parseCommandArgs(argv, {}, ["REF"]);
  const model = await openModelArg(positionals[0]);
  try {
    console.log(formatDescription(describeModel(model)));
    return 0;
  } finally {
    model.close();
  }
}
