// Argument parsing shared by the commands: `node:util` parseArgs in strict mode, with its errors
// turned into UsageError so the CLI answers them with the command's usage and exit code 2.

import { parseArgs, type ParseArgsConfig } from "node:util";

/** Bad usage (unknown flag, missing argument, malformed value): exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

type Options = NonNullable<ParseArgsConfig["options"]>;

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

/**
 * Parses argv against `options`; `names` are the positional arguments' names as shown in usage.
 * The last name may end with "..." to take the rest.
 */
export function parseCommandArgs(argv: string[], options: Options, names: string[]): ParsedArgs {
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as ParsedArgs;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const rest = names.at(-1)?.endsWith("...");
  if (parsed.positionals.length < names.length) {
    throw new UsageError(`missing ${names.slice(parsed.positionals.length).map((n) => n.replace(/\.\.\.$/, "")).join(" ")}`);
  }
  if (!rest && parsed.positionals.length > names.length) {
    throw new UsageError(`unexpected argument "${parsed.positionals[names.length]}"`);
  }
  return parsed;
}
