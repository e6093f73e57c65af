// `valar batch submit|wait|results|list|cancel`: the Batch API (src/api/batches.ts) from the
// command line, against a running server. The server is --url (env VALAR_URL, default
// http://127.0.0.1:8080); env VALAR_API_KEY, when set, is sent as the Bearer key (never a flag,
// so it stays out of shell history and `ps`).

import { createHash } from "node:crypto";
import { parseCommandArgs, UsageError, type ParsedArgs } from "./args.ts";

const SYNOPSIS = `usage:
  valar batch submit FILE.jsonl [--label L] [--webhook URL] [--url URL]
  valar batch wait ID [--interval-ms N] [--url URL]
  valar batch results ID [-o FILE] [--url URL]
  valar batch list [--limit N] [--url URL]
  valar batch cancel ID [--url URL]`;

const DEFAULT_URL = "http://127.0.0.1:8080";
const ENDPOINT = "/v1/responses";

/** A failure to report as `valar batch: MESSAGE` with exit code 1. */
class BatchError extends Error {
  override name = "BatchError";
}

// ---------------------------------------------------------------------------------------------
// HTTP

interface Client {
  base: string;
  headers: Record<string, string>;
}

function clientOf(values: ParsedArgs["values"]): Client {
  const raw = (values.url as string | undefined) ?? process.env.VALAR_URL ?? DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url must be an http(s) URL, got "${raw}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--url must be an http(s) URL, got "${raw}"`);
  const key = process.env.VALAR_API_KEY;
  return { base: raw.replace(/\/+$/, ""), headers: key ? { authorization: `Bearer ${key}` } : {} };
}

/** The server's `{error: {message, param}}` envelope as one line; the status when there is none. */
async function errorOf(res: Response): Promise<BatchError> {
  const text = await res.text();
  try {
    const e = JSON.parse(text)?.error;
    if (e && typeof e.message === "string") return new BatchError(e.param ? `${e.message} (param: ${e.param})` : e.message);
  } catch {
    // not JSON: a proxy or something that is not valar answered
  }
  return new BatchError(`HTTP ${res.status} ${res.statusText}${text ? `: ${text.slice(0, 200)}` : ""}`);
}

/** One request; a refused connection or a non-2xx answer is a BatchError. */
async function call(c: Client, method: string, path: string, init: { body?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(c.base + path, {
      method,
      headers: { ...c.headers, ...(init.body === undefined ? {} : { "content-type": "application/json" }), ...init.headers },
      body: init.body,
    });
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === "ConnectionRefused" || e.code === "ECONNREFUSED") {
      throw new BatchError(`cannot connect to ${c.base}: connection refused (is \`valar serve\` running there? set --url or VALAR_URL)`);
    }
    throw new BatchError(`cannot reach ${c.base}: ${e.message}`);
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

async function getJson<T>(c: Client, method: string, path: string, init?: Parameters<typeof call>[3]): Promise<T> {
  return (await call(c, method, path, init)).json() as Promise<T>;
}

// ---------------------------------------------------------------------------------------------
// The batch object as GET /v1/batches/{id} and the list render it

type ItemStatus = "queued" | "in_progress" | "completed" | "incomplete" | "failed" | "cancelled";

interface Batch {
  id: string;
  label: string | null;
  request_counts: number;
  created_at: number;
  status: "queued" | "in_progress" | "cancelling" | "completed" | "cancelled";
  status_counts: Record<ItemStatus, number>;
}

/** Items that have finished one way or another. */
const doneOf = (b: Batch) => b.request_counts - (b.status_counts.queued ?? 0) - (b.status_counts.in_progress ?? 0);

const countsText = (b: Batch) =>
  (["completed", "incomplete", "failed", "cancelled"] as const).map((s) => `${s} ${b.status_counts[s] ?? 0}`).join(", ");

const summaryLine = (b: Batch) => `${b.id} ${b.status}: ${doneOf(b)}/${b.request_counts} done (${countsText(b)})`;

const batchPath = (id: string) => `/v1/batches/${encodeURIComponent(id)}`;

// ---------------------------------------------------------------------------------------------
// submit: the JSONL file

interface BatchRequest {
  custom_id: string;
  params: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** One line: `{custom_id, params}`, or OpenAI's batch-file line `{custom_id, method, url, body}`. */
function parseLine(text: string, where: string): BatchRequest {
  let line: unknown;
  try {
    line = JSON.parse(text);
  } catch (err) {
    throw new BatchError(`${where}: not JSON (${(err as Error).message})`);
  }
  if (!isObject(line)) throw new BatchError(`${where}: expected a JSON object`);
  if (typeof line.custom_id !== "string" || line.custom_id === "") throw new BatchError(`${where}: custom_id must be a non-empty string`);
  if ("params" in line) {
    if (!isObject(line.params)) throw new BatchError(`${where}: params must be an object (the body of POST ${ENDPOINT})`);
    return { custom_id: line.custom_id, params: line.params };
  }
  if ("body" in line) {
    if (line.method !== "POST") throw new BatchError(`${where}: method must be "POST", got ${JSON.stringify(line.method)}`);
    if (line.url !== ENDPOINT) throw new BatchError(`${where}: url must be "${ENDPOINT}" (the only endpoint a batch can target), got ${JSON.stringify(line.url)}`);
    if (!isObject(line.body)) throw new BatchError(`${where}: body must be an object (the body of POST ${ENDPOINT})`);
    return { custom_id: line.custom_id, params: line.body };
  }
  throw new BatchError(`${where}: expected {custom_id, params} or {custom_id, method, url, body}`);
}

/** Every non-empty line, with its 1-based line number (to turn the server's `requests[i]` back into a line). */
function parseJsonl(text: string, file: string): { requests: BatchRequest[]; lines: number[] } {
  const requests: BatchRequest[] = [];
  const lines: number[] = [];
  let start = 0;
  for (let n = 1; start <= text.length; n++) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    if (line !== "") {
      requests.push(parseLine(line, `${file} line ${n}`));
      lines.push(n);
    }
    start = end + 1;
  }
  return { requests, lines };
}

/** The server names a bad item `requests[i]`; say which line of the file that was. */
function withLine(err: unknown, lines: number[], file: string): unknown {
  if (!(err instanceof BatchError)) return err;
  const m = /requests\[(\d+)\]/.exec(err.message);
  const line = m ? lines[Number(m[1])] : undefined;
  return line === undefined ? err : new BatchError(`${file} line ${line}: ${err.message}`);
}

async function submit(p: ParsedArgs): Promise<number> {
  const c = clientOf(p.values);
  const file = p.positionals[1];
  const label = p.values.label as string | undefined;
  const webhook = p.values.webhook as string | undefined;
  const f = Bun.file(file);
  if (!(await f.exists())) throw new BatchError(`no such file: ${file}`);
  const text = await f.text();
  // Same file and label, same key: re-running a submit whose answer was lost replays the batch
  // the first one created instead of queueing every request a second time.
  const key = "valar-batch-" + createHash("sha256").update(text).update("\0").update(label ?? "").digest("hex");
  const { requests, lines } = parseJsonl(text, file);
  if (requests.length === 0) throw new BatchError(`${file}: no requests (every line is empty)`);
  const body = JSON.stringify({
    endpoint: ENDPOINT,
    requests,
    ...(label === undefined ? {} : { label }),
    ...(webhook === undefined ? {} : { metadata: { completion_webhook: webhook } }),
  });
  let batch: Batch;
  try {
    batch = await getJson<Batch>(c, "POST", "/v1/batches", { body, headers: { "Idempotency-Key": key } });
  } catch (err) {
    throw withLine(err, lines, file);
  }
  // Only the id on stdout, so `ID=$(valar batch submit f.jsonl)` works.
  console.log(batch.id);
  process.stderr.write(`submitted ${batch.request_counts} request${batch.request_counts === 1 ? "" : "s"} from ${file} as ${batch.id}\n`);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// wait: poll until finished, with progress on stderr

/** Items per second over the last RATE_WINDOW_MS of samples, so the ETA follows the current pace. */
const RATE_WINDOW_MS = 10_000;

class Progress {
  private samples: { t: number; done: number }[] = [];
  private lastPrinted = -1;

  constructor(private readonly tty: boolean) {}

  update(b: Batch, now: number): void {
    const done = doneOf(b);
    this.samples.push({ t: now, done });
    while (this.samples.length > 2 && now - this.samples[1].t >= RATE_WINDOW_MS) this.samples.shift();
    if (this.tty) {
      process.stderr.write(`\r${this.bar(b, done)}\x1b[K`);
    } else if (done !== this.lastPrinted) {
      // Off a terminal (a log, CI): a plain line, and only when something changed.
      process.stderr.write(`${b.id} ${b.status}: ${done}/${b.request_counts} done\n`);
    }
    this.lastPrinted = done;
  }

  /** Ends the bar's line so what follows starts on its own. */
  finish(): void {
    if (this.tty && this.samples.length > 0) process.stderr.write("\n");
  }

  private rate(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || last.t <= first.t) return null;
    return ((last.done - first.done) * 1000) / (last.t - first.t);
  }

  private bar(b: Batch, done: number): string {
    const total = b.request_counts;
    const frac = total === 0 ? 1 : done / total;
    const width = 30;
    const filled = Math.round(frac * width);
    const rate = this.rate();
    const eta = rate && rate > 0 ? duration((total - done) / rate) : "?";
    return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total} ${(frac * 100).toFixed(1)}% ` +
      `${rate === null ? "?" : rate.toFixed(1)} items/s ETA ${eta} (${b.status})`;
  }
}

/** Seconds as h:mm:ss or m:ss. */
function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh > 0 ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

function positiveInt(values: ParsedArgs["values"], name: string, def: number): number {
  const raw = values[name];
  if (raw === undefined) return def;
  const v = Number(raw);
  if (raw === "" || !Number.isInteger(v) || v < 1) throw new UsageError(`--${name} must be a positive integer, got "${raw}"`);
  return v;
}

async function wait(p: ParsedArgs): Promise<number> {
  const c = clientOf(p.values);
  const id = p.positionals[1];
  const interval = positiveInt(p.values, "interval-ms", 1000);
  const progress = new Progress(process.stderr.isTTY === true);
  let b: Batch;
  try {
    for (;;) {
      b = await getJson<Batch>(c, "GET", batchPath(id));
      progress.update(b, performance.now());
      if (b.status === "completed" || b.status === "cancelled") break;
      await Bun.sleep(interval);
    }
  } finally {
    progress.finish();
  }
  process.stderr.write(summaryLine(b) + "\n");
  return b.status === "completed" ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// results, list, cancel

async function results(p: ParsedArgs): Promise<number> {
  const c = clientOf(p.values);
  const id = p.positionals[1];
  const out = p.values.output as string | undefined;
  const res = await call(c, "GET", `${batchPath(id)}/results`);
  // Chunk by chunk from the socket to the sink: a 100,000-item batch never sits in memory.
  const sink = out === undefined ? Bun.stdout.writer() : Bun.file(out).writer();
  let lines = 0;
  try {
    const reader = res.body?.getReader();
    while (reader) {
      const { done, value } = await reader.read();
      if (done) break;
      for (let i = 0; i < value.length; i++) if (value[i] === 10) lines++;
      sink.write(value);
      await sink.flush();
    }
  } finally {
    if (out === undefined) await sink.flush();
    else await sink.end();
  }
  process.stderr.write(`${lines} result${lines === 1 ? "" : "s"}${out === undefined ? "" : ` written to ${out}`}\n`);
  return 0;
}

async function list(p: ParsedArgs): Promise<number> {
  const c = clientOf(p.values);
  const limit = p.values.limit === undefined ? undefined : positiveInt(p.values, "limit", 0);
  const batches = await getJson<Batch[]>(c, "GET", `/v1/batches${limit === undefined ? "" : `?limit=${limit}`}`);
  console.log(["id", "status", "done/total", "label", "created"].join("\t"));
  for (const b of batches) {
    console.log([b.id, b.status, `${doneOf(b)}/${b.request_counts}`, b.label ?? "-", new Date(b.created_at * 1000).toISOString()].join("\t"));
  }
  return 0;
}

async function cancel(p: ParsedArgs): Promise<number> {
  const c = clientOf(p.values);
  const b = await getJson<Batch>(c, "POST", `${batchPath(p.positionals[1])}/cancel`);
  console.log(summaryLine(b));
  return 0;
}

// ---------------------------------------------------------------------------------------------
// The subcommand table

type Options = Parameters<typeof parseCommandArgs>[1];

interface Subcommand {
  /** Positional names after the subcommand's own, as shown in usage. */
  args: string[];
  options: Options;
  run(p: ParsedArgs): Promise<number>;
}

const URL_OPTION: Options = { url: { type: "string" } };

const SUBCOMMANDS: Record<string, Subcommand> = {
  submit: { args: ["FILE"], options: { ...URL_OPTION, label: { type: "string" }, webhook: { type: "string" } }, run: submit },
  wait: { args: ["ID"], options: { ...URL_OPTION, "interval-ms": { type: "string" } }, run: wait },
  results: { args: ["ID"], options: { ...URL_OPTION, output: { type: "string", short: "o" } }, run: results },
  list: { args: [], options: { ...URL_OPTION, limit: { type: "string" } }, run: list },
  cancel: { args: ["ID"], options: URL_OPTION, run: cancel },
};

/** Runs `batch …`; `argv` starts with the subcommand. Returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const name = argv[0] ?? "";
  const sub = Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name] : undefined;
  try {
    if (!sub) throw new UsageError(name === "" ? "missing subcommand" : `unknown subcommand "${name}"`);
    // The subcommand stays as positional 0 so its own arguments are positionals[1...].
    return await sub.run(parseCommandArgs(argv, sub.options, ["SUBCOMMAND", ...sub.args]));
  } catch (err) {
    if (err instanceof UsageError) {
      // Every subcommand's synopsis, not just the first line that the CLI's own handler would show.
      console.error(`valar batch: ${err.message}\n${SYNOPSIS}\n(\`valar batch --help\` for details)`);
      return 2;
    }
    if (err instanceof BatchError) {
      console.error(`valar batch: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

if (import.meta.main) process.exit(await run(process.argv.slice(2)));
