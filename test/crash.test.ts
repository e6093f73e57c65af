// Crash safety with a real process: background requests are accepted, the server is killed
// with SIGKILL while two run (batched together) and the others wait, and a new server on the
// same database runs every one of them to the end (the running ones from the start). Nothing accepted is lost, and
// an idempotency key given before the crash still replays the same record after it. A clean
// stop (SIGTERM) puts interrupted work back in the queue the same way.

import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { MODEL_ID, MODEL_PATH, greedyCases, post } from "./e2e-harness.ts";

setDefaultTimeout(180_000);

const dir = mkdtempSync(join(tmpdir(), "valar-crash-"));
const dbPath = join(dir, "valar.db");
const children: Subprocess[] = [];

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** Starts the server process on the shared database and resolves with its URL. */
async function spawnServer(maxRunning?: number): Promise<{ url: string; proc: Subprocess<"ignore", "pipe", "inherit"> }> {
  const args = [join(import.meta.dir, "support/serve-process.ts"), dbPath, MODEL_ID, MODEL_PATH, ...(maxRunning ? [String(maxRunning)] : [])];
  const proc = Bun.spawn([process.execPath, ...args], {
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

function statuses(): Record<string, string> {
  const db = new Database(dbPath, { readonly: true });
  try {
    const rows = db.query("SELECT id, status FROM responses").all() as { id: string; status: string }[];
    return Object.fromEntries(rows.map((r) => [r.id, r.status]));
  } finally {
    db.close();
  }
}

async function get(url: string, id: string): Promise<any> {
  return (await fetch(`${url}/v1/responses/${id}`)).json();
}

test("SIGKILL with two running and three queued: after a restart on the same database all five finish", async () => {
  const cases = await greedyCases();
  // two sequences at once: the first two run together, the rest wait for a slot
  const a = await spawnServer(2);
  // Long enough to be still running when killed (64 tokens, the reference's length: ~0.3 s at
  // this machine's ~200 tok/s; 24 finished inside the wait below once decode got faster).
  const LONG = 64;
  const SHORT = 3;
  const body = (input: string, max: number) => ({ model: MODEL_ID, input, temperature: 0, max_output_tokens: max, background: true });
  const requests = [
    body(cases[0].prompt, LONG),
    body(cases[1].prompt, LONG),
    body(cases[2].prompt, SHORT),
    body("Tom had a red ball", SHORT),
    body("The sun was", SHORT),
  ];
  const idemHeaders = { "Idempotency-Key": "before-the-crash" };
  const ids: string[] = [];
  for (const [i, r] of requests.entries()) {
    const res = await post(`${a.url}/v1/responses`, r, i === 4 ? idemHeaders : {});
    expect(res.status).toBe(202);
    ids.push(res.json.id);
  }
  // Kill while the long ones are running and the rest wait behind them.
  for (let i = 0; i < 2400 && (await get(a.url, ids[1])).status !== "in_progress"; i++) await Bun.sleep(25);
  await Bun.sleep(50);
  a.proc.kill("SIGKILL");
  await a.proc.exited;
  const atCrash = statuses();
  expect(ids.map((id) => atCrash[id])).toEqual(["in_progress", "in_progress", "queued", "queued", "queued"]);

  const b = await spawnServer();
  const done: any[] = [];
  for (const id of ids) {
    let r = await get(b.url, id);
    for (let i = 0; i < 4800 && ["queued", "in_progress"].includes(r.status); i++) {
      await Bun.sleep(25);
      r = await get(b.url, id);
    }
    done.push(r);
  }
  // Every one ran to its token limit; the interrupted one started over and produced all its tokens.
  expect(done.map((r) => r.status)).toEqual(Array(5).fill("incomplete"));
  expect(done.map((r) => r.usage.output_tokens)).toEqual([LONG, LONG, SHORT, SHORT, SHORT]);
  // Greedy output is llama.cpp's (the restarted generation included).
  for (let i = 0; i < 3; i++) expect(cases[i].greedy_text.trimStart().startsWith(done[i].output_text.trimStart())).toBe(true);
  // The key reserved before the crash still replays the same record, without a new one.
  const replay = await post(`${b.url}/v1/responses`, requests[4], idemHeaders);
  expect(replay.json.id).toBe(ids[4]);
  expect(replay.headers.get("idempotent-replayed")).toBe("true");
  expect(Object.keys(statuses())).toHaveLength(5);

  b.proc.kill("SIGTERM");
  expect(await b.proc.exited).toBe(0);
});

test("a clean stop (SIGTERM) puts running work back in the queue, not cancelled; the next start finishes it", async () => {
  const a = await spawnServer();
  const res = await post(`${a.url}/v1/responses`, { model: MODEL_ID, input: "Once upon a time", temperature: 0, max_output_tokens: 40, background: true });
  expect(res.status).toBe(202);
  for (let i = 0; i < 2400 && (await get(a.url, res.json.id)).status !== "in_progress"; i++) await Bun.sleep(25);
  a.proc.kill("SIGTERM");
  expect(await a.proc.exited).toBe(0);
  expect(statuses()[res.json.id]).toBe("queued");
  const b = await spawnServer();
  let r = await get(b.url, res.json.id);
  for (let i = 0; i < 4800 && ["queued", "in_progress"].includes(r.status); i++) {
    await Bun.sleep(25);
    r = await get(b.url, res.json.id);
  }
  expect(r.status).toBe("incomplete");
  expect(r.usage.output_tokens).toBe(40);
  b.proc.kill("SIGTERM");
  expect(await b.proc.exited).toBe(0);
});
