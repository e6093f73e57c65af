// `valar generate --model REF --prompt TEXT [--max-tokens N] [--temperature T] [--top-p P]
// [--seed S] [--json]`: runs the engine in-process and prints the continuation as it streams,
// or with --json one object with the prompt ids, generated ids, text and timings.

import { acquireDevice, loadModel } from "../engine/index.ts";
import { createTokenizer } from "../engine/tokenizer/index.ts";
import { parseCommandArgs, UsageError } from "./args.ts";
import { openModelArg } from "./model-arg.ts";

/** Numeric flags: [name, default, check, what it must be]. */
const NUMBERS: [string, number | undefined, (v: number) => boolean, string][] = [
  ["max-tokens", 128, (v) => Number.isInteger(v) && v >= 0, "a non-negative integer"],
  ["temperature", 0.8, (v) => v >= 0, "a number >= 0"],
  ["top-p", 0.95, (v) => v >= 0 && v <= 1, "a number in [0, 1]"],
  ["seed", undefined, (v) => Number.isInteger(v) && v >= 0, "a non-negative integer"],
  ["max-context", undefined, (v) => Number.isInteger(v) && v > 0, "a positive integer"],
];

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, {
    model: { type: "string", short: "m" },
    prompt: { type: "string", short: "p" },
    json: { type: "boolean" },
    ...Object.fromEntries(NUMBERS.map(([name]) => [name, { type: "string" as const }])),
  }, []);
  if (typeof values.model !== "string") throw new UsageError("--model REF is required");
  if (typeof values.prompt !== "string") throw new UsageError("--prompt TEXT is required");
  const num: Record<string, number | undefined> = {};
  for (const [name, def, ok, what] of NUMBERS) {
    const raw = values[name];
    if (raw === undefined) { num[name] = def; continue; }
    const v = Number(raw);
    if (raw === "" || !ok(v)) throw new UsageError(`--${name} must be ${what}, got "${raw}"`);
    num[name] = v;
  }

  const file = await openModelArg(values.model);
  try {
    const tokenizer = createTokenizer(file);
    const promptIds = tokenizer.encode(values.prompt);
    const device = await acquireDevice();
    const model = await loadModel(device, file, { maxContext: num["max-context"] });
    try {
      const ids: number[] = [];
      const decoder = tokenizer.decoder();
      const gen = model.generate(promptIds, {
        maxTokens: num["max-tokens"]!,
        sampling: { temperature: num.temperature!, topP: num["top-p"]!, seed: num.seed },
        stopIds: tokenizer.stopIds ?? (tokenizer.eosId !== null ? [tokenizer.eosId] : []),
      });
      let r = await gen.next();
      for (; !r.done; r = await gen.next()) {
        ids.push(r.value.id);
        if (!values.json) process.stdout.write(decoder.push(r.value.id));
      }
      const { finishReason, timings } = r.value;
      if (values.json) {
        const tokensPerSecond = timings.outputTokens > 1 ? ((timings.outputTokens - 1) * 1000) / timings.decodeMs : null;
        console.log(JSON.stringify({ promptIds, ids, text: tokenizer.decode(ids), finishReason, timings: { ...timings, decodeTokensPerSecond: tokensPerSecond } }));
      } else {
        process.stdout.write(decoder.flush() + "\n");
        const tps = timings.outputTokens > 1 ? ((timings.outputTokens - 1) * 1000) / timings.decodeMs : 0;
        console.error(`[${timings.promptTokens} prompt tokens in ${timings.prefillMs.toFixed(0)} ms, ${timings.outputTokens} tokens at ${tps.toFixed(1)} tok/s, ${finishReason}]`);
      }
      return 0;
    } finally {
      model.dispose();
    }
  } finally {
    file.close();
  }
}
