// Engine speed beside llama.cpp, in the same process and run: `npm run bench:engine`.
//
// For each stories15M file: prefill tokens/s over a 128-token prompt and decode tokens/s over
// 128 generated tokens (greedy), ours (WebGPU) and llama.cpp's (node-llama-cpp, CPU) at each
// thread count of BENCH_THREADS (default 1 and 2: on lavapipe our kernels run on one thread, see
// src/engine/gpu/bun-host.ts), with the ratio (the median of the ratios of runs side by side),
// the bytes of weights one decode step reads and the bandwidth that implies. One warm-up run each,
// then the median of BENCH_RUNS (default 3) runs.
// stories15M's context is 256 tokens: exactly 128 + 128.
//
//   BENCH_RUNS=5 bun bench/engine.ts
//   BENCH_THREADS=2 bun bench/engine.ts   # llama.cpp thread counts, comma-separated (default 1,2)
//   bun bench/engine.ts q8_0          # only the named files
//
// Prefill time covers the prompt's forward pass and the first sampled token (what a client
// waits for); decode covers the 127 single-token steps after it.

import { acquireDevice, loadModel } from "../src/engine/index.ts";
import { lavapipeThreads } from "../src/engine/gpu/bun-host.ts";
import { openModel } from "../src/engine/model/open.ts";
import type { LoadedModel } from "../src/engine/types.ts";
import { cpus, loadavg } from "node:os";
import { openReference, REFERENCE_THREADS, timePrefillDecode } from "../scripts/llama-cpp-reference.ts";
import { STORY_TEXT as PROMPT_TEXT } from "./story.ts";
import { weightBytesPerStep } from "./roofline.ts";

const MODELS_DIR = new URL("../../shared/models/", import.meta.url).pathname;
/** stories15M's files by type: the three of stories15M/ and llama-quantize's of stories15M-quants/. */
const FILES: Record<string, string> = {
  ...Object.fromEntries(["f32", "q8_0", "q4_0"].map((t) => [t, `stories15M/stories15M-${t}.gguf`])),
  ...Object.fromEntries(["q4_1", "q5_0", "q5_1", "iq4_nl", "q2_k", "q3_k_m", "q4_k_m", "q5_k_m"].map((t) => [t, `stories15M-quants/stories15M-${t}.gguf`])),
};
const TYPES = Object.keys(FILES);
const PROMPT_TOKENS = 128;
const GEN_TOKENS = 128;
const CONTEXT = 256;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** llama.cpp's thread counts: one row per count. */
const THREADS = (process.env.BENCH_THREADS ?? `1,${REFERENCE_THREADS}`).split(",").map(Number);


interface Sample { prefillMs: number; decodeMs: number; decodeTokens: number }

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Runs `a` and `b` alternately (one warm-up each: pipelines, caches, first touch of weights) so
 * both see the same background load on a shared machine; medians per side, and the medians of
 * the ratios a / b of each run's tokens/s with the b run beside it (this machine's speed drifts
 * by 10-30% within a minute, for both sides: a ratio of neighbours drifts less than one of medians).
 */
async function measurePair(runs: number, a: () => Promise<Sample>, b: () => Promise<Sample>): Promise<[Sample, Sample, { prefill: number; decode: number }]> {
  await a();
  await b();
  const sa: Sample[] = [];
  const sb: Sample[] = [];
  for (let i = 0; i < runs; i++) {
    sa.push(await a());
    sb.push(await b());
  }
  const med = (ss: Sample[]): Sample => ({
    prefillMs: median(ss.map((s) => s.prefillMs)),
    decodeMs: median(ss.map((s) => s.decodeMs)),
    decodeTokens: ss[0].decodeTokens,
  });
  const ratio = (f: (s: Sample) => number) => median(sa.map((x, i) => f(sb[i]) / f(x)));
  return [med(sa), med(sb), { prefill: ratio((x) => x.prefillMs), decode: ratio((x) => x.decodeMs / x.decodeTokens) }];
}

/** One greedy generation of GEN_TOKENS by our engine, timed by the engine itself. */
function oursOnce(model: LoadedModel, prompt: number[]) {
  return async (): Promise<Sample> => {
    const gen = model.generate(prompt, { maxTokens: GEN_TOKENS, sampling: { temperature: 0, topP: 1 } });
    let r = await gen.next();
    while (!r.done) r = await gen.next();
    const t = r.value.timings;
    if (t.outputTokens !== GEN_TOKENS) throw new Error(`generated ${t.outputTokens} tokens, expected ${GEN_TOKENS}`);
    return { prefillMs: t.prefillMs, decodeMs: t.decodeMs, decodeTokens: t.outputTokens - 1 };
  };
}

const STORAGE = 0x80, COPY_SRC = 0x4, COPY_DST = 0x8, MAP_READ = 0x1;

/**
 * Fixed costs of one decode step on this device, to say what limits decode: a submit with an
 * 8-byte readback, and `n` trivial dispatches in one pass (per-dispatch overhead). Medians.
 */
async function overheadProbe(device: GPUDevice, n: number): Promise<{ readbackMs: number; dispatchesMs: number }> {
  const buf = device.createBuffer({ size: 4096, usage: STORAGE | COPY_SRC });
  const dst = device.createBuffer({ size: 8, usage: COPY_DST | MAP_READ });
  const module = device.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read_write> b: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) { if (g.x < 1024u) { b[g.x] = b[g.x] + 1.0; } }`,
  });
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] });
  const time = async (dispatches: number) => {
    const ts: number[] = [];
    for (let r = 0; r < 15; r++) {
      const t = performance.now();
      const enc = device.createCommandEncoder();
      if (dispatches) {
        const pass = enc.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        for (let i = 0; i < dispatches; i++) pass.dispatchWorkgroups(16);
        pass.end();
      }
      enc.copyBufferToBuffer(buf, 0, dst, 0, 8);
      device.queue.submit([enc.finish()]);
      await dst.mapAsync(MAP_READ);
      dst.unmap();
      ts.push(performance.now() - t);
    }
    return median(ts);
  };
  const readbackMs = await time(0);
  const dispatchesMs = (await time(n)) - readbackMs;
  buf.destroy();
  dst.destroy();
  return { readbackMs, dispatchesMs };
}

const tps = (tokens: number, ms: number) => (tokens * 1000) / ms;
const fmt = (x: number, d = 1) => x.toFixed(d);

const wanted = process.argv.slice(2);
const types = wanted.length ? TYPES.filter((t) => wanted.includes(t)) : TYPES;
const device = await acquireDevice();
const adapterInfo = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
console.log(`engine bench: stories15M, prompt ${PROMPT_TOKENS} tokens, ${GEN_TOKENS} generated, context ${CONTEXT}; median of ${RUNS} runs after 1 warm-up`);
const lp = lavapipeThreads();
const oursThreads = lp === undefined ? "" : lp === "0" ? ", dispatches inline on one thread (LP_NUM_THREADS=0)" : `, LP_NUM_THREADS=${lp}`;
console.log(`ours: WebGPU on ${adapterInfo ? `${adapterInfo.vendor} ${adapterInfo.architecture} ${adapterInfo.description}`.trim() : "(adapter info unavailable)"}${oursThreads}; llama.cpp: node-llama-cpp CPU, ${THREADS.join(" and ")} thread(s)\n`);

const load = () => loadavg().map((x) => x.toFixed(2)).join(" ");
const maxThreads = Math.max(...THREADS);
console.log(`load average at start: ${load()} (the machine may be shared: both sides run alternately)`);
if (loadavg()[0] > Math.max(1, cpus().length - maxThreads) + 0.5) {
  console.log(
    "warning: other processes are using the CPUs, both sides are slowed" +
      (maxThreads > 1 ? "; llama.cpp's spinning thread barriers slow down sharply when its threads cannot all run (try BENCH_THREADS=1 or an idle machine)" : ""),
  );
}
const rows: string[][] = [];
const limits: string[] = [];
for (const type of types) {
  const path = `${MODELS_DIR}${FILES[type]}`;
  const file = openModel(path);
  try {
    // every run prefills the same prompt: no prefix cache, or later runs would skip it
    const model = await loadModel(device, file, { maxContext: CONTEXT, prefixCache: false });
    try {
      const dispatches = model.dispatchesPerToken;
      const bytes = weightBytesPerStep(file);
      let stepMs = 0;
      for (const threads of THREADS) {
        // llama.cpp with its defaults (flash attention "auto"), as a user would run it.
        const ref = await openReference(path, { contextSize: CONTEXT, threads, flashAttention: "auto" });
        let oursS: Sample, refS: Sample, paired: { prefill: number; decode: number };
        try {
          const tokens = [...ref.model.tokenize(PROMPT_TEXT, false)];
          const bos = ref.model.tokens.bos;
          const prompt = (bos === null ? tokens : [bos, ...tokens]).slice(0, PROMPT_TOKENS);
          if (prompt.length < PROMPT_TOKENS) throw new Error(`prompt text gives only ${prompt.length} tokens`);
          [oursS, refS, paired] = await measurePair(RUNS, oursOnce(model, prompt), () => timePrefillDecode(ref.sequence, prompt, GEN_TOKENS - 1));
        } finally {
          await ref.close();
        }
        stepMs = oursS.decodeMs / oursS.decodeTokens;
        const oursPre = tps(PROMPT_TOKENS, oursS.prefillMs), refPre = tps(PROMPT_TOKENS, refS.prefillMs);
        const oursDec = tps(oursS.decodeTokens, oursS.decodeMs), refDec = tps(refS.decodeTokens, refS.decodeMs);
        rows.push([
          type, String(threads),
          fmt(oursPre), fmt(refPre), fmt(paired.prefill, 2),
          fmt(oursDec), fmt(refDec), fmt(paired.decode, 2),
          fmt(bytes / 1e6, 2), fmt((bytes * oursDec) / 1e9, 2), fmt((bytes * refDec) / 1e9, 2),
          String(dispatches),
        ]);
      }
      const probe = await overheadProbe(device, dispatches);
      limits.push(
        `${type}: decode step ${stepMs.toFixed(1)} ms = submit + 8-byte readback ${probe.readbackMs.toFixed(2)} ms` +
          ` + ${dispatches} dispatches' fixed cost ${probe.dispatchesMs.toFixed(2)} ms + kernel work ~${(stepMs - probe.readbackMs - probe.dispatchesMs).toFixed(1)} ms`,
      );
    } finally {
      model.dispose();
    }
  } finally {
    file.close();
  }
}

const header = [
  "file", "llama.cpp threads", "prefill tok/s ours", "llama.cpp", "ratio", "decode tok/s ours", "llama.cpp", "ratio",
  "weights MB/token", "GB/s ours", "GB/s llama.cpp", "dispatches/token",
];
console.log(`| ${header.join(" | ")} |`);
console.log(`|${header.map(() => "---").join("|")}|`);
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
console.log(`\nwhere our decode time goes (fixed costs measured with trivial kernels on this device):`);
for (const l of limits) console.log(`  ${l}`);
console.log(`\nload average at end: ${load()}`);
process.exit(0);
