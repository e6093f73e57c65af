// Starts the real server (real engine, real store in a temp directory) on a free port for the
// HTTP tests, serving ../shared/models/stories15M/stories15M-q8_0.gguf.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, type RunningServer, type StartOptions } from "../src/server.ts";

export const MODEL_ID = "stories15M-q8_0";
export const MODEL_PATH = join(import.meta.dir, "../../shared/models/stories15M/stories15M-q8_0.gguf");
export const GREEDY_PATH = join(import.meta.dir, "../../shared/models/stories15M/llama.cpp-greedy-q8_0.json");

export interface GreedyCase {
  prompt: string;
  prompt_ids: number[];
  greedy_ids: number[];
  greedy_text: string;
}

export async function greedyCases(): Promise<GreedyCase[]> {
  return (await Bun.file(GREEDY_PATH).json()).cases;
}

export interface TestServer extends RunningServer {
  dbPath: string;
  close(): Promise<void>;
}

/** `prepare` runs against the fresh database path before the server opens it (e.g. to create keys). */
export async function startTestServer(
  opts: Partial<StartOptions> = {},
  prepare?: (dbPath: string) => void,
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "valar-e2e-"));
  const dbPath = join(dir, "valar.db");
  prepare?.(dbPath);
  const server = await startServer({
    models: [{ id: MODEL_ID, ref: MODEL_PATH }],
    host: "127.0.0.1",
    port: 0,
    db: dbPath,
    ...opts,
  });
  return {
    ...server,
    dbPath,
    async close() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** POSTs JSON (or raw text) and returns status and parsed body. */
export async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}

/** Asserts the exact OpenAI envelope shape and returns its error object. */
export function envelope(json: any): { message: string; type: string; param: string | null; code: string | null } {
  if (!json || typeof json !== "object" || !json.error) throw new Error(`not an error envelope: ${JSON.stringify(json)}`);
  const keys = Object.keys(json.error).sort();
  if (JSON.stringify(keys) !== JSON.stringify(["code", "message", "param", "type"])) {
    throw new Error(`envelope keys ${keys.join(",")}`);
  }
  if (typeof json.error.message !== "string" || json.error.message.length === 0) throw new Error("empty message");
  return json.error;
}
