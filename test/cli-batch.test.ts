// `valar batch` as a real subprocess against a real server (stories15M): submit (both line
// formats, idempotent re-submit, a bad line), wait, results, list, cancel.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MODEL_ID, startTestServer, type TestServer } from "./e2e-harness.ts";

const ROOT = join(import.meta.dir, "..");

let server: TestServer;
let dir: string;

beforeAll(async () => {
  server = await startTestServer({ replicas: 1 });
  dir = mkdtempSync(join(tmpdir(), "valar-cli-batch-"));
});

afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([process.execPath, "run", "src/cli.ts", "batch", ...args], {
    cwd: ROOT,
    env: { ...process.env, VALAR_URL: server.url, VALAR_API_KEY: "" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

const params = (input: string) => ({ model: MODEL_ID, input, max_output_tokens: 4, temperature: 0 });

const LINES = [
  { custom_id: "a", params: params("Once upon a time") },
  { custom_id: "b", method: "POST", url: "/v1/responses", body: params("The little dog") },
  { custom_id: "c", params: params("Once upon a time, there was") },
  { custom_id: "d", method: "POST", url: "/v1/responses", body: params("Lily liked to") },
];

describe("valar batch", () => {
  let id = "";

  test("submit prints the id; the same submit again replays it", async () => {
    const file = join(dir, "batch.jsonl");
    // A blank line in the middle is skipped.
    writeFileSync(file, LINES.slice(0, 2).map((l) => JSON.stringify(l)).join("\n") + "\n\n" + LINES.slice(2).map((l) => JSON.stringify(l)).join("\n") + "\n");
    const first = await cli("submit", file, "--label", "cli-test");
    expect(first.stderr).toContain("4 requests");
    expect(first.code).toBe(0);
    id = first.stdout.trim();
    expect(id).toMatch(/^batch_\S+$/);
    const again = await cli("submit", file, "--label", "cli-test");
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe(id);
  });

  test("wait exits 0 once completed, with plain progress off a terminal", async () => {
    const r = await cli("wait", id, "--interval-ms", "50");
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("4/4");
    expect(r.stderr).toContain("completed");
    expect(r.stderr).not.toContain("\r");
  });

  test("results -o FILE writes one line per request", async () => {
    const out = join(dir, "results.jsonl");
    const r = await cli("results", id, "-o", out);
    expect(r.code).toBe(0);
    const rows = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(rows.length).toBe(4);
    expect(rows.map((x) => x.custom_id).sort()).toEqual(["a", "b", "c", "d"]);
    for (const row of rows) expect(["incomplete", "completed"]).toContain(row.response.status);
  });

  test("list shows the batch", async () => {
    const r = await cli("list", "--limit", "5");
    expect(r.code).toBe(0);
    const row = r.stdout.split("\n").find((l) => l.startsWith(id));
    expect(row).toBeDefined();
    expect(row).toContain("4/4");
    expect(row).toContain("cli-test");
  });

  test("cancel on a finished batch reports it completed", async () => {
    const r = await cli("cancel", id);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("completed");
  });

  test("a line for another endpoint is refused with its line number", async () => {
    const file = join(dir, "bad.jsonl");
    const bad = { custom_id: "x", method: "POST", url: "/v1/chat/completions", body: params("Hi") };
    writeFileSync(file, [LINES[0], bad].map((l) => JSON.stringify(l)).join("\n") + "\n");
    const r = await cli("submit", file);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("line 2");
    expect(r.stderr).toContain("/v1/chat/completions");
  });

  test("the server's errors and usage errors", async () => {
    const missing = await cli("wait", "batch_nope", "--interval-ms", "50");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("valar batch: No batch with id 'batch_nope'");
    const usage = await cli("frobnicate");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("valar batch submit");
  });
});
