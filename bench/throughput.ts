// Throughput under load (`npm run bench:throughput`): N concurrent streams through HTTP against
// our server (its own process, `valar serve` on stories15M-q8_0), beside llama.cpp
// (node-llama-cpp in this process: one context with N sequences evaluated concurrently, which
// it batches into one decode per step) on the same prompt ids and the same token counts.
//
// For N = 1, 4, 16, 64 (BENCH_LEVELS): aggregate output tokens/s (all streams' tokens over the
// wall time from the first request to the last token) and p50 / p99 time to first token, ours
// and llama.cpp's at each thread count of BENCH_THREADS (default 1 and 2), with the ratio. Then
// prefill tokens/s of a 192-token prompt (stories15M's context is 256) sent while 15 other
// streams decode, both sides; and our server's peak RSS and device memory at 64 streams.
// Our server and llama.cpp take turns (never both at once), one warm-up each. Beside our figures,
// the CPU cores our server and this bench (its HTTP client) kept busy over the level.
// BENCH_ROUNDS=R runs each level R times, ours and llama.cpp alternating, and reports the median
// round of each (with ours' range) and the median of the rounds' paired ratios: on a shared
// machine one round of either side swings by a third.
// Last, each level beside the bandwidth roofline (bench/roofline.ts): the device's copy
// bandwidth, measured here before the server starts, over the bytes a decode step reads.
//
//   bun bench/throughput.ts
//   BENCH_LEVELS=1,16 BENCH_THREADS=1 bun bench/throughput.ts
//   BENCH_ROUNDS=3 BENCH_LEVELS=1,16 bun bench/throughput.ts
//   BENCH_THREADS=none bun bench/throughput.ts        # ours alone (where node-llama-cpp is absent)
//   BENCH_MODEL=path/to/stories15M-q8_0.gguf BENCH_BANDWIDTH_GBS=4800 bun bench/throughput.ts
//   bun bench/throughput.ts -- --max-running 16      # flags after -- go to `valar serve`

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadavg } from "node:os";
import type { Token } from "node-llama-cpp";
import { openModel } from "../src/engine/model/open.ts";
import { createTokenizer } from "../src/engine/tokenizer/index.ts";
import { acquireDevice, featuresOf } from "../src/engine/index.ts";
import { kvBytesPerPosition, measureBandwidth, rooflineTokensPerSecond, stepBytes, weightBytesPerStep, type Roofline } from "./roofline.ts";
import { STORY_TEXT } from "./story.ts";
import { readChatStream } from "./chat-stream.ts";

const MODEL_PATH = process.env.BENCH_MODEL ?? new URL("../../shared/models/stories15M/stories15M-q8_0.gguf", import.meta.url).pathname;
const MODEL_ID = "stories15M-q8_0";
const TOKENS = 64;
const CONTEXT = 256;
const PREFILL_TOKENS = 192;
const LEVELS = (process.env.BENCH_LEVELS ?? "1,4,16,64").split(",").map(Number);
/** llama.cpp's thread counts; none: our server alone. */
const THREADS = process.env.BENCH_THREADS === "none" ? [] : (process.env.BENCH_THREADS ?? "1,2").split(",").map(Number);
/** Rounds per level, ours and llama.cpp alternating. */
const ROUNDS = Math.max(1, Math.floor(Number(process.env.BENCH_ROUNDS ?? 1)));
const serveFlags = process.argv.includes("--") ? process.argv.slice(process.argv.indexOf("--") + 1) : [];

const STARTS = ["Once upon a time", "One day", "There was a little", "Lily and Ben", "The sun was", "Tom had a red", "A big bear", "In a small town"];
const WHO = ["girl", "boy", "dog", "cat", "bird", "frog", "fish", "king"];
/** 64 different story openings (each distinct from its first tokens on). */
const PROMPTS = STARTS.flatMap((s) => WHO.map((w) => `${s} ${w}`));

const modelFile = openModel(MODEL_PATH);
const tokenizer = createTokenizer(modelFile);
/** The prompt ids the server builds for a one-message chat on a model without a template: BOS + text. */
const idsOf = (text: string) => tokenizer.encode(text, { addBos: true });

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

interface Level { tokens: number; wallMs: number; ttft: number[]; counts: number[]; cores?: { server: number; bench: number } }

// ---- our server, in its own process ----

async function startServer(): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "valar-throughput-"));
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "../src/cli.ts"), "serve", "--model", `${MODEL_ID}=${MODEL_PATH}`, "--port", "0",
    "--db", join(dir, "bench.db"), "--max-running", "64", "--max-step-tokens", "128", "--context", String(CONTEXT), ...serveFlags], { stdout: "ignore", stderr: "pipe" });
  const reader = proc.stderr.getReader();
  let log = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`valar serve exited:\n${log}`);
    log += new TextDecoder().decode(value);
    const m = /listening on (http:\/\/\S+)/.exec(log);
    if (m) {
      reader.releaseLock();
      return { url: m[1], pid: proc.pid, async stop() { proc.kill("SIGTERM"); await proc.exited; rmSync(dir, { recursive: true, force: true }); } };
    }
  }
}

/** One streamed chat completion: ms to the first content delta, tokens produced. */
async function stream(url: string, prompt: string, maxTokens: number, t0: number): Promise<{ ttft: number; tokens: number; end: number }> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL_ID, messages: [{ role: "user", content: prompt }], max_completion_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const { text, ttft } = await readChatStream(res, t0);
  const usage = /"completion_tokens":(\d+)/.exec(text);
  if (!usage) throw new Error(`no usage in the stream: ${text.slice(-300)}`);
  return { ttft, tokens: Number(usage[1]), end: performance.now() };
}

async function oursLevel(url: string, pid: number, n: number): Promise<Level> {
  const cpu0 = { server: cpuSeconds(pid), bench: process.cpuUsage() };
  const t0 = performance.now();
  const rs = await Promise.all(Array.from({ length: n }, (_, i) => stream(url, PROMPTS[i % PROMPTS.length], TOKENS, t0)));
  const end = Math.max(...rs.map((r) => r.end));
  const wallS = (performance.now() - t0) / 1000;
  const bench = process.cpuUsage(cpu0.bench);
  const cores = { server: (cpuSeconds(pid) - cpu0.server) / wallS, bench: (bench.user + bench.system) / 1e6 / wallS };
  return { tokens: rs.reduce((a, r) => a + r.tokens, 0), wallMs: end - t0, ttft: rs.map((r) => r.ttft), counts: rs.map((r) => r.tokens), cores };
}

/** CPU seconds a process has used (user + system), from /proc (0 where there is none). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return 0;
  }
}

/** A 192-token prompt's time to its first token while `others` streams decode (they start first). */
async function oursPrefillUnderLoad(url: string, others: number): Promise<number> {
  const t0 = performance.now();
  const busy = Array.from({ length: others }, (_, i) => stream(url, PROMPTS[i], TOKENS, t0));
  await Bun.sleep(300); // the others are decoding by now
  const t1 = performance.now();
  const r = await stream(url, longPrompt(), 1, t1);
  await Promise.all(busy);
  return r.ttft;
}

function longPrompt(): string {
  let words = `${STORY_TEXT} ${STORY_TEXT}`.split(" ");
  while (idsOf(words.join(" ")).length > PREFILL_TOKENS) words = words.slice(0, -1);
  return words.join(" ");
}

async function peakRssBytes(pid: number): Promise<number> {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function deviceBytes(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(new RegExp(`valar_engine_device_bytes\\{model="${MODEL_ID}"\\} (\\d+)`).exec(text)?.[1]);
}

// ---- llama.cpp, in this process ----

/** node-llama-cpp, imported only when a thread count asks for it (it is absent on a bare device machine). */
const reference = THREADS.length ? await import("../scripts/llama-cpp-reference.ts") : null;

async function llamaContext(n: number, threads: number) {
  const llama = await reference!.referenceLlama();
  const model = await llama.loadModel({ modelPath: MODEL_PATH, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: n * CONTEXT, sequences: n, threads, batchSize: Math.max(512, n * 8), flashAttention: true });
  return { model, context, async close() { await context.dispose(); await model.dispose(); } };
}

/** N sequences of one context, each prefilled and decoded `counts[i]` tokens greedily, all at once. */
async function llamaLevel(n: number, threads: number, prompts: number[][], counts: number[]): Promise<Level> {
  const { context, close } = await llamaContext(n, threads);
  try {
    const greedy = { generateNext: { token: true, options: { temperature: 0 } } };
    const seqs = Array.from({ length: n }, () => context.getSequence());
    const t0 = performance.now();
    const ttft: number[] = [];
    await Promise.all(seqs.map(async (seq, i) => {
      const ids = prompts[i];
      const last = ids.length - 1;
      let r = await seq.controlledEvaluate(ids.map((t, j) => (j === last ? [t as Token, greedy] : (t as Token))));
      let next = r[last]?.next.token;
      ttft.push(performance.now() - t0);
      for (let k = 1; k < counts[i]; k++) {
        r = await seq.controlledEvaluate([[next as Token, greedy]]);
        next = r[0]?.next.token;
      }
    }));
    return { tokens: counts.reduce((a, b) => a + b, 0), wallMs: performance.now() - t0, ttft, counts };
  } finally {
    await close();
  }
}

async function llamaPrefillUnderLoad(threads: number, others: number, busyPrompts: number[][]): Promise<number> {
  const { context, close } = await llamaContext(others + 1, threads);
  try {
    const greedy = { generateNext: { token: true, options: { temperature: 0 } } };
    const seqs = Array.from({ length: others + 1 }, () => context.getSequence());
    let stop = false;
    const busy = seqs.slice(1).map(async (seq, i) => {
      const ids = busyPrompts[i];
      let r = await seq.controlledEvaluate(ids.map((t, j) => (j === ids.length - 1 ? [t as Token, greedy] : (t as Token))));
      let next = r[ids.length - 1]?.next.token;
      for (let k = 1; k < TOKENS && !stop; k++) {
        r = await seq.controlledEvaluate([[next as Token, greedy]]);
        next = r[0]?.next.token;
      }
    });
    await Bun.sleep(300);
    const ids = idsOf(longPrompt());
    const t1 = performance.now();
    await seqs[0].controlledEvaluate(ids.map((t, j) => (j === ids.length - 1 ? [t as Token, greedy] : (t as Token))));
    const ms = performance.now() - t1;
    stop = true;
    await Promise.all(busy);
    return ms;
  } finally {
    await close();
  }
}

// ---- the bandwidth roofline, measured before the server starts ----

async function roofline(): Promise<Roofline & { adapter: string }> {
  const device = await acquireDevice();
  try {
    const info = (device as { adapterInfo?: { vendor?: string; architecture?: string; device?: string; description?: string } }).adapterInfo ?? {};
    const adapter = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(" ") || "unknown adapter";
    const given = Number(process.env.BENCH_BANDWIDTH_GBS);
    const bandwidth = given > 0 ? given * 1e9 : await measureBandwidth(device);
    return { weightBytes: weightBytesPerStep(modelFile), kvBytesPerPosition: kvBytesPerPosition(modelFile, featuresOf(device)), bandwidth, adapter };
  } finally {
    device.destroy();
  }
}

// ---- the run ----

const tps = (l: Level) => (1000 * l.tokens) / l.wallMs;
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const ttftCell = (l: Level) => `${pct(l.ttft, 50).toFixed(0)} / ${pct(l.ttft, 99).toFixed(0)}`;
/** The round whose tok/s is the median of a level's (the lower middle for an even count). */
const medianRound = (ls: Level[]) => [...ls].sort((a, b) => tps(a) - tps(b))[Math.floor((ls.length - 1) / 2)];
/** Our tok/s cell: the median round's, with the range over the rounds where there are several. */
const oursCell = (ls: Level[]) => {
  const all = ls.map(tps);
  const range = ls.length > 1 ? ` (${Math.min(...all).toFixed(1)}-${Math.max(...all).toFixed(1)})` : "";
  return `${tps(medianRound(ls)).toFixed(1)}${range}`;
};
const coresCell = (l: Level) => (l.cores ? `${l.cores.server.toFixed(2)} / ${l.cores.bench.toFixed(2)}` : "-");
console.log(`throughput bench: ${MODEL_ID}, ${TOKENS}-token streams (greedy; a stream ends early at an end-of-story token, llama.cpp runs the same counts), context ${CONTEXT}`);
console.log(`load average at start: ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
const roof = await roofline();
const server = await startServer();
const rows: string[] = [];
const roofRows: string[] = [];
let rss = 0, gpu = 0;
/** Our median tok/s per level, for the ratios to one stream. */
const oursByLevel = new Map<number, number>();
try {
  await oursLevel(server.url, server.pid, 4); // warm-up: pipelines for every step shape
  for (const n of LEVELS) {
    const prompts = Array.from({ length: n }, (_, i) => idsOf(PROMPTS[i % PROMPTS.length]));
    const oursRuns: Level[] = [];
    const refRuns = new Map<number, Level[]>(THREADS.map((t) => [t, []]));
    for (let r = 0; r < ROUNDS; r++) {
      const run = await oursLevel(server.url, server.pid, n);
      oursRuns.push(run);
      for (const t of THREADS) refRuns.get(t)!.push(await llamaLevel(n, t, prompts, run.counts));
    }
    if (n === Math.max(...LEVELS)) { rss = await peakRssBytes(server.pid); gpu = await deviceBytes(server.url); }
    const ours = medianRound(oursRuns);
    oursByLevel.set(n, tps(ours));
    for (const t of THREADS) {
      const refs = refRuns.get(t)!;
      const ref = medianRound(refs);
      const ratio = pct(oursRuns.map((o, i) => tps(o) / tps(refs[i])), 50);
      rows.push(`| ${n} | ${t} | ${ours.tokens} | ${oursCell(oursRuns)} | ${tps(ref).toFixed(1)} | ${ratio.toFixed(2)} | ${ttftCell(ours)} | ${ttftCell(ref)} | ${coresCell(ours)} |`);
    }
    if (THREADS.length === 0) rows.push(`| ${n} | - | ${ours.tokens} | ${oursCell(oursRuns)} | - | - | ${ttftCell(ours)} | - | ${coresCell(ours)} |`);
    // a stream's mean context over its decode: its prompt and half its output
    const meanContext = prompts.reduce((a, p, i) => a + p.length + ours.counts[i] / 2, 0) / n;
    const best = rooflineTokensPerSecond(roof, n, meanContext);
    roofRows.push(`| ${n} | ${meanContext.toFixed(0)} | ${mib(stepBytes(roof, n, meanContext))} | ${best.toFixed(0)} | ${tps(ours).toFixed(1)} | ${((100 * tps(ours)) / best).toFixed(2)}% |`);
  }
  console.log("\n| streams | llama.cpp threads | tokens | ours tok/s | llama.cpp tok/s | ratio | ours TTFT p50 / p99 ms | llama.cpp TTFT p50 / p99 ms | CPU cores busy: our server / bench client |");
  console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) console.log(r);
  const single = oursByLevel.get(1);
  if (single && LEVELS.some((n) => n > 1)) console.log(`ours, N streams over one: ${LEVELS.filter((n) => n > 1).map((n) => `${n}: ${(oursByLevel.get(n)! / single).toFixed(2)}x`).join(", ")}`);
  if (ROUNDS > 1) console.log(`(${ROUNDS} rounds a level: median rounds, ours' range in brackets, ratio the median of the rounds' paired ratios)`);

  const OTHERS = 15;
  const promptLen = idsOf(longPrompt()).length;
  const oursMs = await oursPrefillUnderLoad(server.url, OTHERS);
  const busyPrompts = Array.from({ length: OTHERS }, (_, i) => idsOf(PROMPTS[i]));
  console.log(`\nprefill of a ${promptLen}-token prompt while ${OTHERS} streams decode (time to its first token)`);
  console.log("| llama.cpp threads | ours ms | ours tok/s | llama.cpp ms | llama.cpp tok/s | ratio |");
  console.log("|---:|---:|---:|---:|---:|---:|");
  const oursCells = `${oursMs.toFixed(0)} | ${((1000 * promptLen) / oursMs).toFixed(0)}`;
  for (const t of THREADS) {
    const refMs = await llamaPrefillUnderLoad(t, OTHERS, busyPrompts);
    console.log(`| ${t} | ${oursCells} | ${refMs.toFixed(0)} | ${((1000 * promptLen) / refMs).toFixed(0)} | ${(refMs / oursMs).toFixed(2)} |`);
  }
  if (THREADS.length === 0) console.log(`| - | ${oursCells} | - | - | - |`);

  const source = Number(process.env.BENCH_BANDWIDTH_GBS) > 0 ? "BENCH_BANDWIDTH_GBS" : "copyBufferToBuffer, read + written bytes";
  console.log(`\nbandwidth roofline on ${roof.adapter}: ${(roof.bandwidth / 1e9).toFixed(1)} GB/s (${source}); a decode step reads ${mib(roof.weightBytes)} MiB of weights once plus ${roof.kvBytesPerPosition} bytes of KV per position of each sequence`);
  console.log("| streams | mean context | MiB per step | roofline tok/s | ours tok/s | of roofline |");
  console.log("|---:|---:|---:|---:|---:|---:|");
  for (const r of roofRows) console.log(r);
  console.log(`\nour server at ${Math.max(...LEVELS)} streams: peak RSS ${(rss / 2 ** 20).toFixed(0)} MiB, device memory ${mib(gpu)} MiB (weights, KV pools, step buffers)`);
  console.log(`load average at end: ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
} finally {
  await server.stop();
}
process.exit(0);
