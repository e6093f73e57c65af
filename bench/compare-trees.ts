// Our engine against another checkout of it, in one process: `bun bench/compare-trees.ts OTHER`.
//
// On this machine two runs of the same code in separate processes differ by 10-20% (the host's
// load comes and goes), which hides most kernel changes. Here both engines share the process and
// the device and run alternately, so the noise falls on both: the ratio is what to read. Each
// side loads the model with its own sources, prefills a 128-token prompt and decodes 128 tokens
// greedily; per side, the medians of ROUNDS runs (default 5, after one warm-up) of decode CPU
// time per token (this process's user + system: lavapipe runs the kernels on a thread of it),
// wall time per token, and prefill tokens/s; and whether both produced the same ids.
//
//   git worktree add /tmp/before HEAD~1 && ln -s "$PWD/node_modules" /tmp/before/
//   bun bench/compare-trees.ts /tmp/before                    # stories15M-q8_0
//   bun bench/compare-trees.ts /tmp/before path/to/model.gguf # any GGUF file
//   SWAP=1 ...                                                # load the other tree first
//   BATCH=16 ...   # 16 sequences at once (16-token prompts): CPU and wall time per generated token
//                  # of the whole batch (both trees must batch: this one and later)

import { acquireDevice, loadModel } from "../src/engine/index.ts";
import { openModel } from "../src/engine/model/open.ts";
import type { LoadedModel } from "../src/engine/types.ts";

const [otherTree, modelPath = new URL("../../shared/models/stories15M/stories15M-q8_0.gguf", import.meta.url).pathname] = process.argv.slice(2);
if (!otherTree) {
  console.error("usage: bun bench/compare-trees.ts OTHER_CHECKOUT [model.gguf]");
  process.exit(2);
}
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const BATCH = Number(process.env.BATCH ?? 1);
const PROMPT_TOKENS = BATCH > 1 ? 16 : 128;
const GEN_TOKENS = 128;

const other = (await import(`${otherTree}/src/engine/index.ts`)) as { loadModel: typeof loadModel };
const device = await acquireDevice();
const file = await openModel(modelPath);
const opts = { maxContext: PROMPT_TOKENS + GEN_TOKENS };
const loadThis = () => loadModel(device, file, opts);
const loadOther = () => other.loadModel(device, file, opts);
// load order shifts timings by a few percent: SWAP=1 checks that a difference is not that
const [ours, theirs] = process.env.SWAP
  ? await loadOther().then(async (o) => [await loadThis(), o])
  : await loadThis().then(async (t) => [t, await loadOther()]);

// BOS, then ids spread over the vocabulary's low range (any model's vocabulary has them); each
// run's prompt differs from the others' in its second token, so no run starts on a prefix the
// engine cached from an earlier one
const vocab = ours.nVocab;
let runs = 0;
const promptOf = (k: number) => Array.from({ length: PROMPT_TOKENS }, (_, i) => (i === 0 ? 1 : 3 + ((i * 37 + (i === 1 ? k : 0)) % Math.min(500, vocab - 3))));

interface Run { cpuMs: number; wallMs: number; prefill: number; ids: string }

let run = async function runOne(model: LoadedModel, k: number): Promise<Run> {
  const gen = model.generate(promptOf(k), { maxTokens: GEN_TOKENS, sampling: { temperature: 0, topP: 1 } });
  const ids: number[] = [];
  let cpu0 = process.cpuUsage();
  let wall0 = 0;
  let x = await gen.next();
  while (!x.done) {
    // decode starts once the first token (the prefill's) is out
    if (ids.length === 1) { cpu0 = process.cpuUsage(); wall0 = performance.now(); }
    ids.push(x.value.id);
    x = await gen.next();
  }
  const cpu = process.cpuUsage(cpu0);
  const steps = ids.length - 1;
  return { cpuMs: (cpu.user + cpu.system) / 1000 / steps, wallMs: (performance.now() - wall0) / steps, prefill: (PROMPT_TOKENS * 1000) / x.value.timings.prefillMs, ids: ids.join(",") };
};

/** BATCH sequences at once, timed whole: per generated token. */
async function runBatch(model: LoadedModel, k: number): Promise<Run> {
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const all = await Promise.all(Array.from({ length: BATCH }, async (_, b) => {
    const ids: number[] = [];
    for await (const t of model.generate(promptOf(k * BATCH + b), { maxTokens: GEN_TOKENS, sampling: { temperature: 0, topP: 1 } })) ids.push(t.id);
    return ids;
  }));
  const cpu = process.cpuUsage(cpu0);
  const n = all.reduce((a, ids) => a + ids.length, 0);
  return { cpuMs: (cpu.user + cpu.system) / 1000 / n, wallMs: (performance.now() - wall0) / n, prefill: NaN, ids: all.map((ids) => ids.join(",")).join(";") };
}
if (BATCH > 1) run = runBatch;

await run(ours, runs);
await run(theirs, runs++);
const a: Run[] = [], b: Run[] = [];
for (let i = 0; i < ROUNDS; i++) {
  a.push(await run(ours, runs));
  b.push(await run(theirs, runs++));
}
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1];
const row = (name: string, r: Run[]) => {
  const cpu = median(r.map((x) => x.cpuMs)), wall = median(r.map((x) => x.wallMs));
  return `| ${name} | ${cpu.toFixed(2)} | ${wall.toFixed(2)} | ${(1000 / wall).toFixed(1)} | ${median(r.map((x) => x.prefill)).toFixed(0)} |`;
};
console.log(`${modelPath}, ${ROUNDS} rounds${process.env.SWAP ? ", other tree loaded first" : ""}`);
console.log("| tree | decode CPU ms/token | decode wall ms/token | decode tok/s | prefill tok/s |\n|---|---|---|---|---|");
console.log(row("this", a));
console.log(row(otherTree, b));
const ratio = median(a.map((x) => x.cpuMs)) / median(b.map((x) => x.cpuMs));
console.log(`this / other decode CPU time: ${ratio.toFixed(3)}; same greedy ids: ${a[0].ids === b[0].ids}`);
process.exit(0);
