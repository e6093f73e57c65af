// Batches with a real server process: one killed with SIGKILL while a batch runs finishes it
// after a restart with every item run exactly once (no duplicate records, the ones finished
// before the kill untouched, the interrupted ones run again from the start); and the results of
// a batch whose JSON Lines are far larger than the memory the server may grow stream out of the
// database page by page.

import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { MODEL_ID, MODEL_PATH, greedyCases, post } from "./e2e-harness.ts";

setDefaultTimeout(300_000);

const dir = mkdtempSync(join(tmpdir(), "valar-batch-crash-"));
const children: Subprocess[] = [];

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

async function spawnServer(dbPath: string, maxRunning: number): Promise<{ url: string; proc: Subprocess<"ignore", "pipe", "inherit"> }> {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "support/serve-process.ts"), dbPath, MODEL_ID, MODEL_PATH, String(maxRunning)], {
    stdin: "ignore", stdout: "pipe", stderr: "inherit",
  });
  children.push(proc);
  const reader = proc.stdout.getReader();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`server exited before listening (code ${await proc.exited})`);
    text += new TextDecoder().decode(value);
    const line = text.split("\n").find((l) => l.startsWith("{"));
    if (line) {
      reader.releaseLock();
      return { url: JSON.parse(line).url, proc };
    }
  }
}

async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, what: string, timeoutMs = 240_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

const batchStatus = async (url: string, id: string) => (await fetch(`${url}/v1/batches/${id}`)).json() as Promise<any>;
const finishedCount = (b: any) => b.request_counts - b.status_counts.queued - b.status_counts.in_progress;

function itemRows(dbPath: string, batchId: string): { id: string; status: string; completed_at: number | null }[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.query("SELECT id, status, completed_at FROM responses WHERE batch_id = ? ORDER BY batch_index").all(batchId) as any[];
  } finally {
    db.close();
  }
}

test("SIGKILL while a batch runs: after a restart every item runs exactly once", async () => {
  const cases = await greedyCases();
  const dbPath = join(dir, "crash.db");
  const first = await spawnServer(dbPath, 4);
  const requests = Array.from({ length: 60 }, (_, i) => ({
    custom_id: `k-${i}`, params: { model: MODEL_ID, input: cases[i % 3].prompt, max_output_tokens: 24, temperature: 0 },
  }));
  const created = await post(`${first.url}/v1/batches`, { endpoint: "/v1/responses", requests });
  expect(created.status).toBe(200);
  const id = created.json.id;
  const mid = await until(() => batchStatus(first.url, id), (b) => finishedCount(b) >= 8 && b.status_counts.in_progress > 0, "the batch to be mid-way");
  first.proc.kill("SIGKILL");
  await first.proc.exited;
  expect(mid.status).toBe("in_progress");

  const before = itemRows(dbPath, id);
  const doneBefore = new Map(before.filter((r) => r.completed_at !== null).map((r) => [r.id, r.completed_at]));
  const interrupted = before.filter((r) => r.status === "in_progress").length;
  expect(doneBefore.size).toBeGreaterThanOrEqual(8);
  expect(interrupted).toBeGreaterThan(0);
  expect(doneBefore.size).toBeLessThan(60);

  const second = await spawnServer(dbPath, 4);
  const done = await until(() => batchStatus(second.url, id), (b) => b.status === "completed", "the batch to finish after the restart");
  expect(done.status_counts.incomplete).toBe(60);
  const after = itemRows(dbPath, id);
  expect(after).toHaveLength(60);
  expect(new Set(after.map((r) => r.id)).size).toBe(60);
  // what finished before the kill is untouched: not run a second time
  for (const [rid, at] of doneBefore) expect(after.find((r) => r.id === rid)!.completed_at).toBe(at);
  for (let i = 0; i < 60; i++) {
    const rec = await (await fetch(`${second.url}/v1/batches/${id}/k-${i}`)).json() as any;
    expect(rec.usage.output_tokens).toBe(24);
    expect(cases[i % 3].greedy_text.trimStart().startsWith(rec.output_text.trimStart())).toBe(true);
  }
  second.proc.kill("SIGTERM");
  await second.proc.exited;
});

const rssBytes = (pid: number) => Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/)![1]) * 1024;

test("results stream a batch whose JSON Lines are far larger than the server's memory growth", async () => {
  const dbPath = join(dir, "results.db");
  let server = await spawnServer(dbPath, 4);
  // every item's Response carries its 16 metadata values of 512 characters: about 8.6 kB a line
  const metadata = Object.fromEntries(Array.from({ length: 16 }, (_, k) => [`key${k}`, String.fromCharCode(97 + k).repeat(512)]));
  const n = 18_000;
  const requests = Array.from({ length: n }, (_, i) => ({ custom_id: `r-${i}`, params: { model: MODEL_ID, input: "Once upon a time", max_output_tokens: 1, metadata } }));
  const created = await post(`${server.url}/v1/batches`, { endpoint: "/v1/responses", requests });
  expect(created.status).toBe(200);
  const id = created.json.id;
  // the queued rest is cancelled; a cancelled item is a finished one and has its line too
  await post(`${server.url}/v1/batches/${id}/cancel`, {});
  await until(() => batchStatus(server.url, id), (b) => b.status === "cancelled", "the cancel to settle");
  // a fresh process, so what accepting the batch allocated does not hide what streaming needs
  server.proc.kill("SIGTERM");
  await server.proc.exited;
  server = await spawnServer(dbPath, 4);
  await fetch(`${server.url}/v1/batches/${id}/r-0`);
  const pid = server.proc.pid;
  const base = rssBytes(pid);
  let peak = base;
  let bytes = 0;
  let lines = 0;
  let tail = "";
  const res = await fetch(`${server.url}/v1/batches/${id}/results`);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    const text = tail + decoder.decode(value, { stream: true });
    const parts = text.split("\n");
    tail = parts.pop()!;
    for (const line of parts) {
      const row = JSON.parse(line);
      if (lines === 0) expect(row.custom_id).toBe("r-0");
      expect(row.response.metadata.key15).toHaveLength(512);
      lines++;
    }
    peak = Math.max(peak, rssBytes(pid));
  }
  expect(lines).toBe(n);
  const growth = peak - base;
  console.log(`results: ${(bytes / 2 ** 20).toFixed(0)} MiB of JSON Lines; server RSS grew ${(growth / 2 ** 20).toFixed(1)} MiB`);
  // the garbage collector's slack is the growth (about 60 MiB, for 43 MiB of lines as for 239)
  expect(bytes).toBeGreaterThan(150 * 2 ** 20);
  expect(growth).toBeLessThan(100 * 2 ** 20);
  server.proc.kill("SIGTERM");
  await server.proc.exited;
});
