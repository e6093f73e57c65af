// The Batch API under load (`bun bench/batch.ts`), against our server in its own process
// (`valar serve` on stories15M-q8_0, its default settings):
//
// 1. Acceptance: time to accept batches of 1,000 / 10,000 / 100,000 items (BENCH_SIZES), each
//    cancelled once accepted, and the server's RSS growth while accepting (VmRSS sampled every
//    10 ms, peak minus before).
// 2. Running: items/s of one 1,000-item batch (BENCH_ITEMS), from the POST to the batch's
//    completion, beside the same requests sent one by one over HTTP (POST /v1/responses) by
//    clients of BENCH_CONCURRENCY (default 16, 64, 128) requests in flight, and the ratio to the
//    best of them. Every item: a story opening, greedy, BENCH_TOKENS (16) output tokens.
//
//   bun bench/batch.ts
//   BENCH_SIZES=1000,10000 BENCH_ITEMS=200 bun bench/batch.ts
//   bun bench/batch.ts -- --replicas 1        # flags after -- go to `valar serve`

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const MODEL_PATH = new URL("../../shared/models/stories15M/stories15M-q8_0.gguf", import.meta.url).pathname;
const MODEL_ID = "stories15M-q8_0";
const SIZES = (process.env.BENCH_SIZES ?? "1000,10000,100000").split(",").map(Number);
const ITEMS = Number(process.env.BENCH_ITEMS ?? 1000);
const TOKENS = Number(process.env.BENCH_TOKENS ?? 16);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? "16,64,128").split(",").map(Number);
const serveFlags = process.argv.includes("--") ? process.argv.slice(process.argv.indexOf("--") + 1) : [];

const STARTS = ["Once upon a time", "One day", "There was a little", "Lily and Ben", "The sun was", "Tom had a red", "A big bear", "In a small town"];
const WHO = ["girl", "boy", "dog", "cat", "bird", "frog", "fish", "king"];
const PROMPTS = STARTS.flatMap((s) => WHO.map((w) => `${s} ${w}`));
const paramsOf = (i: number, maxTokens: number) => ({ model: MODEL_ID, input: PROMPTS[i % PROMPTS.length], max_output_tokens: maxTokens, temperature: 0 });

async function startServer(): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "valar-bench-batch-"));
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "../src/cli.ts"), "serve", "--model", `${MODEL_ID}=${MODEL_PATH}`, "--port", "0",
    "--db", join(dir, "bench.db"), ...serveFlags], { stdout: "ignore", stderr: "pipe" });
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

const rss = (pid: number) => Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/)![1]) * 1024;
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

async function postJson(url: string, body: string | object): Promise<any> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(`${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function waitBatch(url: string, id: string): Promise<any> {
  for (;;) {
    const b = await (await fetch(`${url}/v1/batches/${id}`)).json() as any;
    if (b.status === "completed" || b.status === "cancelled") return b;
    await Bun.sleep(50);
  }
}

interface Acceptance { items: number; mb: number; ms: number; growth: number }

async function accept(server: { url: string; pid: number }, n: number): Promise<Acceptance> {
  const body = JSON.stringify({ endpoint: "/v1/responses", requests: Array.from({ length: n }, (_, i) => ({ custom_id: `a-${i}`, params: paramsOf(i, 1) })) });
  Bun.gc(true);
  const before = rss(server.pid);
  let peak = before;
  const sampler = setInterval(() => { peak = Math.max(peak, rss(server.pid)); }, 10);
  const t0 = performance.now();
  const batch = await postJson(`${server.url}/v1/batches`, body);
  const ms = performance.now() - t0;
  clearInterval(sampler);
  peak = Math.max(peak, rss(server.pid));
  await postJson(`${server.url}/v1/batches/${batch.id}/cancel`, {});
  await waitBatch(server.url, batch.id);
  return { items: n, mb: body.length / 1e6, ms, growth: peak - before };
}

/** The batch's items/s: POST to completion. */
async function runBatch(url: string): Promise<number> {
  const t0 = performance.now();
  const batch = await postJson(`${url}/v1/batches`, { endpoint: "/v1/responses", requests: Array.from({ length: ITEMS }, (_, i) => ({ custom_id: `r-${i}`, params: paramsOf(i, TOKENS) })) });
  const done = await waitBatch(url, batch.id);
  const s = (performance.now() - t0) / 1000;
  if (done.status_counts.failed > 0) throw new Error(`${done.status_counts.failed} items failed`);
  return ITEMS / s;
}

/** The same requests over HTTP with `concurrency` in flight: items/s. */
async function runHttp(url: string, concurrency: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < ITEMS; i = next++) await postJson(`${url}/v1/responses`, paramsOf(i, TOKENS));
  }));
  return ITEMS / ((performance.now() - t0) / 1000);
}

const server = await startServer();
try {
  // one warm-up request: kernels compiled, caches touched
  await postJson(`${server.url}/v1/responses`, paramsOf(0, TOKENS));
  console.log("\n### Accepting batches\n");
  console.log("| items | body MB | accept ms | items/s | server RSS growth MiB |");
  console.log("|---:|---:|---:|---:|---:|");
  for (const n of SIZES) {
    const a = await accept(server, n);
    console.log(`| ${a.items} | ${a.mb.toFixed(1)} | ${a.ms.toFixed(0)} | ${(a.items / (a.ms / 1000)).toFixed(0)} | ${mib(a.growth)} |`);
  }
  console.log(`\n### Running ${ITEMS} items of ${TOKENS} tokens\n`);
  console.log("| client | items/s | batch / this |");
  console.log("|---|---:|---:|");
  const http: [string, number][] = [];
  for (const c of CONCURRENCY) http.push([`HTTP, ${c} in flight`, await runHttp(server.url, c)]);
  const batch = await runBatch(server.url);
  for (const [name, rate] of http) console.log(`| ${name} | ${rate.toFixed(1)} | ${(batch / rate).toFixed(2)} |`);
  const best = Math.max(...http.map(([, r]) => r));
  console.log(`| batch | ${batch.toFixed(1)} | ${(batch / best).toFixed(2)} (vs the best HTTP client) |`);
} finally {
  await server.stop();
}
