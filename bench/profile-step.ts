// Where one decode step's time goes, per kernel kind: `bun bench/profile-step.ts [q8_0|f32|q4_0]`.
//
// Loads a stories15M file through the engine's normal path (loadModel), generates greedily up to
// position CONTEXT_AT (PROFILE_AT, default 128), puts those tokens but the last in the runner's
// evalLogits sequence, then measures single-token decode steps of the last one (forward +
// greedy sampler, its step written once and run again in place) two ways:
//
// - timestamps (when the adapter has "timestamp-query", as Dawn on lavapipe does): each dispatch
//   in its own compute pass with begin/end timestamps, over STEPS steps. Gives each kind's kernel
//   time, the gaps between dispatches (pass switches, barriers) and, from the wall clock, the
//   submit + readback cost. Dawn may quantize timestamps (to ~65 us); averaging over many steps
//   and dispatches makes the means usable, single values are not.
// - leave-one-kind-out: the wall time of a whole step minus that of the same step without one
//   kind's dispatches, alternating, at a fixed position. Needs no timestamps; gives each kind's
//   marginal cost in context, its dispatch overhead included. It subtracts two wall times of a
//   whole step, so only an idle machine gives usable rows.
//
// Both submit one step and wait for it. Last, the same steps through the runner's own decode
// loop (which keeps a step in flight), for comparison.
//
//   bun bench/profile-step.ts            # q8_0
//   bun bench/profile-step.ts f32 --leave-out-only

import { acquireDevice, loadModel } from "../src/engine/index.ts";
import { openModel } from "../src/engine/model/open.ts";
import type { ForwardPass, StepCounts } from "../src/engine/forward.ts";
import { StepWriter } from "../src/engine/step.ts";
import { readBuffer } from "../src/engine/gpu/buffers.ts";
import { readFileSync } from "node:fs";

const DIR = new URL("../../shared/models/stories15M/", import.meta.url).pathname;
const CONTEXT = 256;
/** Decode steps start at this position (the bench decodes positions 128-255). */
const CONTEXT_AT = Number(process.env.PROFILE_AT ?? 128);
const WARMUP = 3;
const STEPS = Number(process.env.PROFILE_STEPS ?? 40);
const LEAVE_OUT_PAIRS = Number(process.env.PROFILE_PAIRS ?? 15);
const MAP_READ = 0x1, COPY_DST = 0x8, COPY_SRC = 0x4, QUERY_RESOLVE = 0x200;
/** Tokens of the profiled step (PROFILE_BATCH, default 1): the last ones before CONTEXT_AT, each sampled, like a decode step of that many sequences. */
const BATCH = Number(process.env.PROFILE_BATCH ?? 1);
const GREEDY: StepCounts = { tokens: BATCH, rows: BATCH, masked: false };
/** Dawn rounds timestamps down to multiples of 65536 ns unless unsafe APIs are allowed. */
const TIMESTAMP_QUANTUM = "Dawn quantizes to 65.5 us: single dispatches are unreliable, per-step sums over many dispatches less so";

const args = process.argv.slice(2);
const type = args.find((a) => !a.startsWith("--")) ?? "q8_0";
const leaveOutOnly = args.includes("--leave-out-only");

const device = await acquireDevice({ extraFeatures: ["timestamp-query"] });
const file = openModel(`${DIR}stories15M-${type}.gguf`);
const runner = await loadModel(device, file, { maxContext: CONTEXT });
// (the bench reaches into the runner for its forward pass and the evalLogits sequence's slot)
const inside = runner as unknown as { fwd: ForwardPass; scratch: { slot: number } };
const fwd = inside.fwd;

// Prefill a real prompt and decode greedily up to CONTEXT_AT through the runner.
const prompt: number[] = JSON.parse(readFileSync(`${DIR}llama.cpp-greedy-${type}.json`, "utf8")).cases[0].prompt_ids;
const upTo128 = [...prompt];
for await (const t of runner.generate(prompt, { maxTokens: CONTEXT_AT - prompt.length, sampling: { temperature: 0, topP: 1 } })) upTo128.push(t.id);
upTo128.length = CONTEXT_AT;
// Every position but the last BATCH in the evalLogits sequence; the profiled step runs those.
await runner.evalLogits(upTo128.slice(0, -BATCH));
const slot = inside.scratch.slot;
const at = CONTEXT_AT - BATCH;
new StepWriter(runner.options.shape).write(
  device.queue, fwd.buffers.step,
  Array.from({ length: BATCH }, (_, i) => ({ id: upTo128[at + i], pos: at + i, slot, fed: false })),
  Array.from({ length: BATCH }, (_, i) => ({ token: i, slot, temperature: 0, topP: 1, draw: 0, wantLogprob: false, masked: false, topK: 0 })),
);

const sites = fwd.describeStep(GREEDY);
const kinds = [...new Set(sites.map((s) => s.kernel))];
const staging = device.createBuffer({ size: 8, usage: MAP_READ | COPY_DST });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Submits `encode`'s commands plus an 8-byte copy and waits for them: wall ms. */
async function timed(encode: (enc: GPUCommandEncoder) => void): Promise<number> {
  const t = performance.now();
  const enc = device.createCommandEncoder();
  encode(enc);
  enc.copyBufferToBuffer(fwd.buffers.out, 0, staging, 0, 8);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(MAP_READ);
  staging.unmap();
  return performance.now() - t;
}

interface Row { kind: string; dispatches: number; ms: number }

function printTable(title: string, rows: Row[], stepMs: number) {
  console.log(`\n${title}`);
  console.log("| kernel kind | dispatches/step | ms/step | share |");
  console.log("|---|---|---|---|");
  for (const r of rows) {
    console.log(`| ${r.kind} | ${r.dispatches || ""} | ${r.ms.toFixed(2)} | ${((100 * r.ms) / stepMs).toFixed(1)}% |`);
  }
  console.log(`| **step** | ${sites.length} | ${stepMs.toFixed(2)} | 100% |`);
}

const dispatchesOf = (kind: string) => sites.filter((s) => s.kernel === kind).length;

/**
 * Per-step sums per kind from pass timestamps; medians over the steps (robust to a step that
 * another process on the machine slowed down), so the rows need not add up exactly.
 */
async function profileTimestamps() {
  const n = sites.length;
  const qs = device.createQuerySet({ type: "timestamp", count: 2 * n });
  const resolved = device.createBuffer({ size: 16 * n, usage: QUERY_RESOLVE | COPY_SRC });
  const all = sites.map((_, i) => i);
  const perKind = new Map<string, number[]>(kinds.map((k) => [k, []]));
  const perSite: number[][] = sites.map(() => []);
  const gaps: number[] = [], spans: number[] = [], walls: number[] = [];
  for (let s = 0; s < WARMUP + STEPS; s++) {
    const wall = await timed((enc) => {
      fwd.encodeSubset(enc, GREEDY, all, 1, (k) => ({
        timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * k, endOfPassWriteIndex: 2 * k + 1 },
      }));
      enc.resolveQuerySet(qs, 0, 2 * n, resolved, 0);
    });
    const ts = new BigUint64Array(await readBuffer(device, resolved, 16 * n));
    if (s < WARMUP) continue;
    const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;
    walls.push(wall);
    spans.push(ms(ts[0], ts[2 * n - 1]));
    let gap = 0;
    const sums = new Map<string, number>(kinds.map((k) => [k, 0]));
    for (let i = 0; i < n; i++) {
      const t = ms(ts[2 * i], ts[2 * i + 1]);
      perSite[i].push(t);
      sums.set(sites[i].kernel, sums.get(sites[i].kernel)! + t);
      if (i > 0) gap += ms(ts[2 * i - 1], ts[2 * i]);
    }
    for (const [k, v] of sums) perKind.get(k)!.push(v);
    gaps.push(gap);
  }
  const rows: Row[] = kinds.map((kind) => ({ kind, dispatches: dispatchesOf(kind), ms: median(perKind.get(kind)!) }));
  rows.sort((a, b) => b.ms - a.ms);
  const stepMs = median(walls);
  rows.push({ kind: "between dispatches (pass switch, barrier)", dispatches: 0, ms: median(gaps) });
  rows.push({ kind: "encode + submit + readback (wall - GPU span)", dispatches: 0, ms: median(walls.map((w, i) => w - spans[i])) });
  printTable(
    `timestamps (${TIMESTAMP_QUANTUM}): medians over ${STEPS} greedy decode steps from position ${CONTEXT_AT}, stories15M-${type}`,
    rows, stepMs,
  );
  // The heaviest single dispatches (means), to see which site of a kind dominates.
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const top = sites.map((s, i) => ({ ...s, ms: mean(perSite[i]) })).sort((a, b) => b.ms - a.ms).slice(0, 6);
  console.log(`\nheaviest dispatches (mean ms): ${top.map((t) => `${t.label} (${t.kernel}) ${t.ms.toFixed(2)}`).join("; ")}`);
  qs.destroy();
  resolved.destroy();
}

/**
 * Each kind's marginal cost in context: the step with all its dispatches against the step
 * without that kind's, alternating, at a fixed position (the step repeats in place: the KV write
 * lands at the same position, the embedding rewrites the residual stream each time).
 */
async function profileLeaveOut() {
  const run = async (idx: number[]) => timed((enc) => fwd.encodeSubset(enc, GREEDY, idx));
  const all = sites.map((_, i) => i);
  const rows: Row[] = [];
  const fulls: number[] = [];
  for (let r = 0; r < WARMUP; r++) await run(all);
  for (const kind of kinds) {
    const without = all.filter((i) => sites[i].kernel !== kind);
    const diffs: number[] = [];
    for (let r = 0; r < LEAVE_OUT_PAIRS; r++) {
      const full = await run(all);
      fulls.push(full);
      diffs.push(full - (await run(without)));
    }
    rows.push({ kind, dispatches: all.length - without.length, ms: median(diffs) });
  }
  const empty: number[] = [];
  for (let r = 0; r < 10; r++) empty.push(await timed(() => {}));
  rows.sort((a, b) => b.ms - a.ms);
  const stepMs = median(fulls);
  const base = median(empty);
  rows.push({ kind: "submit + readback (empty command buffer)", dispatches: 0, ms: base });
  rows.push({ kind: "rest (step - sum)", dispatches: 0, ms: stepMs - rows.reduce((a, r) => a + r.ms, 0) });
  printTable(`leave-one-kind-out: step minus the step without that kind (median of ${LEAVE_OUT_PAIRS} pairs), stories15M-${type} (median step ${stepMs.toFixed(2)} ms)`, rows, stepMs);
}

const hasTimestamps = device.features.has("timestamp-query");
if (!hasTimestamps) console.log("this adapter has no timestamp-query: leave-one-kind-out only");
if (hasTimestamps && !leaveOutOnly) await profileTimestamps();
await profileLeaveOut();
// The same steps as the runner decodes them (its own pipelined loop), for comparison with the
// wall step above, which submits and waits one step at a time.
runner.reset();
const gen = runner.generate(upTo128, { maxTokens: STEPS + 1, sampling: { temperature: 0, topP: 1 } });
let r = await gen.next();
while (!r.done) r = await gen.next();
const t = r.value.timings;
console.log(`\nrunner.generate from position ${CONTEXT_AT}: ${(t.decodeMs / (t.outputTokens - 1)).toFixed(2)} ms per decode step (${t.outputTokens - 1} steps)`);
runner.dispose();
file.close();
process.exit(0);
