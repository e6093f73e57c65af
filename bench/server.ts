// HTTP benchmark (`npm run bench:server`): requests/s and p50/p99 latency of a 1-token chat
// completion at 1, 8 and 32 concurrent clients, and time to first token when streaming.
// Starts the real server on stories15M-q8_0 unless `--url URL` points at a running one
// (then `--model ID` names its model and VALAR_API_KEY is sent as the Bearer key).
//
//   bun bench/server.ts [--url http://127.0.0.1:8080] [--model ID] [--requests N]

import { parseArgs } from "node:util";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer } from "../src/server.ts";
import { readChatStream } from "./chat-stream.ts";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    model: { type: "string", default: "stories15M-q8_0" },
    requests: { type: "string", default: "64" },
  },
});

const perLevel = Number(args.requests);
const MODEL_PATH = join(import.meta.dir, "../../shared/models/stories15M/stories15M-q8_0.gguf");

let url = args.url;
let stop: (() => Promise<void>) | undefined;
if (!url) {
  const dir = mkdtempSync(join(tmpdir(), "valar-bench-"));
  const t0 = performance.now();
  const server = await startServer({ models: [{ id: args.model!, ref: MODEL_PATH }], host: "127.0.0.1", port: 0, db: join(dir, "bench.db") });
  console.log(`server started in ${((performance.now() - t0) / 1000).toFixed(1)} s at ${server.url}`);
  url = server.url;
  stop = async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}

const headers: Record<string, string> = { "content-type": "application/json" };
if (process.env.VALAR_API_KEY) headers.authorization = `Bearer ${process.env.VALAR_API_KEY}`;

const PROMPTS = ["Once upon a time", "The little dog", "Lily and Ben went to the park. They saw"];

function body(i: number, maxTokens: number, stream: boolean) {
  return JSON.stringify({
    model: args.model, messages: [{ role: "user", content: PROMPTS[i % PROMPTS.length] }],
    max_completion_tokens: maxTokens, temperature: 0, stream,
  });
}

async function oneToken(i: number): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers, body: body(i, 1, false) });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  return performance.now() - t0;
}

/** Milliseconds to the first content delta, and to the end of the stream. */
async function streamed(i: number, maxTokens: number): Promise<{ ttft: number; total: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers, body: body(i, maxTokens, true) });
  const { ttft } = await readChatStream(res, t0);
  return { ttft, total: performance.now() - t0 };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

async function level(concurrency: number, total: number) {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) latencies.push(await oneToken(next++));
  }));
  const wall = (performance.now() - t0) / 1000;
  return { concurrency, n: latencies.length, rps: latencies.length / wall, p50: pct(latencies, 50), p99: pct(latencies, 99) };
}

try {
  await oneToken(0); // warm-up: first dispatches compile pipelines
  const rows = [];
  for (const c of [1, 8, 32]) rows.push(await level(c, Math.max(perLevel, c)));
  console.log("\n1-token chat completion (non-streaming)");
  console.log("| clients | requests | req/s | p50 ms | p99 ms |");
  console.log("|---:|---:|---:|---:|---:|");
  for (const r of rows) console.log(`| ${r.concurrency} | ${r.n} | ${r.rps.toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} |`);

  const ttfts: number[] = [];
  const totals: number[] = [];
  const N_STREAM = 16;
  for (let i = 0; i < 12; i++) {
    const s = await streamed(i, N_STREAM);
    ttfts.push(s.ttft);
    totals.push(s.total);
  }
  console.log(`\nstreaming, 1 client, ${N_STREAM} tokens, ${ttfts.length} requests`);
  console.log("| metric | p50 ms | p99 ms |");
  console.log("|---|---:|---:|");
  console.log(`| time to first token | ${pct(ttfts, 50).toFixed(1)} | ${pct(ttfts, 99).toFixed(1)} |`);
  console.log(`| whole stream | ${pct(totals, 50).toFixed(1)} | ${pct(totals, 99).toFixed(1)} |`);
} finally {
  await stop?.();
}
