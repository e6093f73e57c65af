// The server on Deno: `deno task serve` (deno.json) runs the same server (Elysia under
// Deno.serve, the engine worker on Deno's WebGPU, the store through the bun:sqlite shim over
// node:sqlite) on stories15M-q8_0, and the official `openai` SDK gets llama.cpp's greedy text
// from chat (JSON and SSE) and responses (sync, background + poll). Background work accepted
// before a SIGKILL finishes after a restart on the same database. Skipped where the `deno` dev
// dependency's binary is missing.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { Database } from "bun:sqlite";
import { MODEL_ID, MODEL_PATH, greedyCases } from "./e2e-harness.ts";

setDefaultTimeout(300_000);

const ROOT = join(import.meta.dir, "..");
const DENO = join(ROOT, "node_modules/.bin/deno");
const dir = mkdtempSync(join(tmpdir(), "valar-deno-"));
const dbPath = join(dir, "valar.db");
const started: number[] = [];

/** The pid and its descendants (`deno task` runs the server as its child). */
function tree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone meanwhile
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

const killTree = (pid: number, signal: NodeJS.Signals) => {
  for (const p of tree(pid).reverse()) try { process.kill(p, signal); } catch { /* already gone */ }
};

afterAll(() => {
  for (const pid of started) killTree(pid, "SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

async function serveOnDeno(): Promise<{ url: string; proc: ReturnType<typeof Bun.spawn> }> {
  const proc = Bun.spawn([DENO, "task", "serve", "--model", `${MODEL_ID}=${MODEL_PATH}`, "--port", "0", "--db", dbPath], {
    cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  });
  started.push(proc.pid);
  let log = "";
  const read = async (stream: ReadableStream<Uint8Array>) => { for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) log += new TextDecoder().decode(chunk); };
  void read(proc.stdout as ReadableStream<Uint8Array>);
  void read(proc.stderr as ReadableStream<Uint8Array>);
  for (let i = 0; i < 1200; i++) {
    const m = /listening on (http:\/\/\S+)/.exec(log);
    if (m) return { url: m[1], proc };
    if (proc.exitCode !== null) break;
    await Bun.sleep(100);
  }
  throw new Error(`deno task serve did not start:\n${log.slice(-3000)}`);
}

test.skipIf(!existsSync(DENO))("deno task serve: the openai SDK gets llama.cpp's greedy text; background work survives a SIGKILL", async () => {
  const cases = await greedyCases();
  const a = await serveOnDeno();
  const client = new OpenAI({ baseURL: `${a.url}/v1`, apiKey: "unused" });
  const c = cases[0];
  const greedy = c.greedy_text.trimStart();
  const N = c.greedy_ids.length;

  const chat = await client.chat.completions.create({ model: MODEL_ID, messages: [{ role: "user", content: c.prompt }], temperature: 0, max_completion_tokens: N });
  expect(chat.choices[0].message.content!.trimStart()).toBe(greedy);
  expect(chat.usage).toMatchObject({ prompt_tokens: c.prompt_ids.length, completion_tokens: N });

  let streamed = "";
  const stream = await client.chat.completions.create({ model: MODEL_ID, messages: [{ role: "user", content: c.prompt }], temperature: 0, max_completion_tokens: N, stream: true });
  for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? "";
  expect(streamed.trimStart()).toBe(greedy);

  const sync = await client.responses.create({ model: MODEL_ID, input: cases[1].prompt, temperature: 0, max_output_tokens: cases[1].greedy_ids.length });
  expect(sync.output_text.trimStart()).toBe(cases[1].greedy_text.trimStart());

  // background: accepted, then polled to the end
  const bg = await client.responses.create({ model: MODEL_ID, input: cases[2].prompt, temperature: 0, max_output_tokens: 16, background: true });
  expect(["queued", "in_progress"]).toContain(bg.status!);
  let polled = await client.responses.retrieve(bg.id);
  while (polled.status === "queued" || polled.status === "in_progress") { await Bun.sleep(25); polled = await client.responses.retrieve(bg.id); }
  expect(polled.status).toBe("incomplete");
  expect(cases[2].greedy_text.trimStart().startsWith(polled.output_text.trimStart())).toBe(true);

  // accepted work outlives the process
  const accepted = [];
  for (const k of [0, 1, 2]) {
    accepted.push(await client.responses.create({ model: MODEL_ID, input: cases[k].prompt, temperature: 0, max_output_tokens: cases[k].greedy_ids.length, background: true }));
  }
  killTree(a.proc.pid, "SIGKILL");
  await a.proc.exited;
  const db = new Database(dbPath, { readonly: true });
  const atKill = db.query("SELECT status FROM responses WHERE id IN (?, ?, ?)").all(...accepted.map((r) => r.id)) as { status: string }[];
  db.close();
  expect(atKill.some((r) => r.status === "queued" || r.status === "in_progress")).toBe(true);
  const b = await serveOnDeno();
  const after = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: "unused" });
  for (const [k, r] of accepted.entries()) {
    let done = await after.responses.retrieve(r.id);
    while (done.status === "queued" || done.status === "in_progress") { await Bun.sleep(25); done = await after.responses.retrieve(r.id); }
    expect(done.status).toBe("incomplete");
    expect(done.output_text.trimStart()).toBe(cases[k].greedy_text.trimStart());
  }
  // the demo's files, bundled on Deno
  const page = await fetch(`${b.url}/demo/`);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain("demo.js");
  killTree(b.proc.pid, "SIGTERM");
  await b.proc.exited;
});
