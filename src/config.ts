// Configuration of `serve`: one table says, for every setting, its flag, its environment
// variable, its default and how its text is parsed. The CLI, the README table and the tests all
// read this table, so a setting cannot exist in one place and be missing in another.
//
// Precedence: a flag beats its environment variable, which beats the default.

import { existsSync, statSync } from "node:fs";
import { basename, extname } from "node:path";
import { parseArgs } from "node:util";
import type { CompletionWindow } from "./generation.ts";

/** The model served by default when neither `--model` nor `VALAR_MODEL` names one and `models/` is empty. */
export const DEFAULT_MODEL_REF = "hf:bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q8_0.gguf";

/** Bad configuration: the message names the setting and what is wrong with it. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

export interface ModelSpec {
  /** The name clients use in the `model` field of a request. */
  id: string;
  /** File path, directory (safetensors) or `hf:OWNER/REPO/FILE`. */
  ref: string;
}

export interface ServeConfig {
  /** Models named by flag or env; empty means "use models/, else pull the default". */
  models: ModelSpec[];
  host: string;
  port: number;
  db: string;
  /** With no managed key in the database, required when `host` is not a loopback address (see `exposureRefusal`). */
  apiKey?: string;
  /** Where models are found and pulled to. */
  modelsDir: string;
  /** How long an idempotency reservation lasts. */
  idempotencyTtlMs: number;
  /** Per-attempt time limit of a completion-webhook delivery. */
  webhookTimeoutMs: number;
  /** Waits before retries 1, 2, 3 of a webhook delivery (the last one repeats). */
  webhookBackoffMs: number[];
  /** Completion windows per model ID; models not listed offer both. */
  windows?: Record<string, CompletionWindow[]>;
  /** Context length for every model, and per model ID (engine default where absent). */
  maxContext?: number;
  contexts?: Record<string, number>;
  /** Engine replicas: a number, or auto (one per core on a CPU adapter, else one). */
  replicas: number | "auto";
  /** Batching: sequences at once, tokens per step, KV pool positions (engine defaults where absent). */
  batching: { maxRunning?: number; maxStepTokens?: number; kvCacheTokens?: number };
  /** Request body limits in bytes: every route but /v1/batches, and /v1/batches. */
  maxBodyBytes: number;
  maxBatchBodyBytes: number;
  /** Completion windows and admission: the standard window's gathering wait and age bound, queue bounds. */
  scheduling: { standardWaitMs: number; maxAgeMs: number; maxQueued: number; maxQueuedPerKey: number };
}

export interface ServeSetting {
  /** Long flag name (`--NAME`); null for settings that only come from the environment. */
  flag: string | null;
  env: string;
  /** Default as shown to people; `undefined` means "no default". */
  default?: string;
  /** The flag may be given several times (the env var is then a comma-separated list). */
  multiple?: boolean;
  valueName: string;
  description: string;
}

export const SERVE_SETTINGS = {
  model: {
    flag: "model", env: "VALAR_MODEL", multiple: true, valueName: "[ID=]REF",
    default: "models/*, else " + DEFAULT_MODEL_REF,
    description: "Model to serve: a .gguf file, a Hugging Face safetensors directory, or hf:OWNER/REPO/FILE " +
      "(pulled into the models directory first). ID defaults to the file name without extension. Repeat to serve several.",
  },
  host: {
    flag: "host", env: "VALAR_HOST", default: "127.0.0.1", valueName: "ADDR",
    description: "Address to listen on. A non-loopback address requires VALAR_API_KEY or a managed key (keys create) in the database.",
  },
  port: {
    flag: "port", env: "VALAR_PORT", default: "8080", valueName: "N",
    description: "TCP port (0 picks a free one).",
  },
  db: {
    flag: "db", env: "VALAR_DB", default: "./data/valar.db", valueName: "PATH",
    description: "SQLite database file (created if missing).",
  },
  modelsDir: {
    flag: "models-dir", env: "VALAR_MODELS_DIR", default: "models", valueName: "DIR",
    description: "Where models are looked for when none is named, and where hf: refs are downloaded.",
  },
  // A key on the command line would be visible to every user through `ps`, so it has no flag.
  apiKey: {
    flag: null, env: "VALAR_API_KEY", valueName: "KEY",
    description: "Bearer key clients must send. Required when the host is not loopback and the database holds no managed key.",
  },
  idempotencyTtl: {
    flag: "idempotency-ttl", env: "VALAR_IDEMPOTENCY_TTL", default: "86400", valueName: "SECONDS",
    description: "How long an Idempotency-Key reservation lasts (24 h).",
  },
  webhookTimeout: {
    flag: "webhook-timeout-ms", env: "VALAR_WEBHOOK_TIMEOUT_MS", default: "30000", valueName: "MS",
    description: "Time limit of one completion-webhook delivery attempt.",
  },
  webhookBackoff: {
    flag: "webhook-backoff-ms", env: "VALAR_WEBHOOK_BACKOFF_MS", default: "1000,5000,25000", valueName: "MS[,MS...]",
    description: "Waits before the webhook retries (3 retries, so 4 attempts; the last wait repeats).",
  },
  modelWindows: {
    flag: "model-windows", env: "VALAR_MODEL_WINDOWS", valueName: "ID=WINDOW[,WINDOW][;ID=...]",
    description: "Completion windows (asap, standard) each model offers, e.g. `tiny=asap;big=asap,standard`. Models not listed offer both.",
  },
  context: {
    flag: "context", env: "VALAR_CONTEXT", valueName: "N|ID=N[;ID=N...]",
    description: "Context length (tokens) for every model, or per model ID; at most the model's own. Default: the model's own, up to 4096.",
  },
  replicas: {
    flag: "replicas", env: "VALAR_REPLICAS", default: "auto", valueName: "N|auto",
    description: "Engine replicas: workers with their own device and a copy of each model, sharing the load. auto: one per core " +
      "(at most 4) when the adapter runs on the CPU (each software device uses one core), else one.",
  },
  maxRunning: {
    flag: "max-running", env: "VALAR_MAX_RUNNING", default: "32", valueName: "N",
    description: "Sequences each model runs at once (batched into every step); more wait in the engine.",
  },
  maxStepTokens: {
    flag: "max-step-tokens", env: "VALAR_MAX_STEP_TOKENS", default: "128", valueName: "N",
    description: "Tokens in one engine step: each running sequence's next token, then prompt chunks (at least --max-running).",
  },
  kvCacheTokens: {
    flag: "kv-cache-tokens", env: "VALAR_KV_CACHE_TOKENS", valueName: "N",
    description: "KV-cache positions per model, over all its sequences (16-token pages). Default: --max-running full contexts, " +
      "within 1 GiB and the device's buffer limits, and never less than one context.",
  },
  standardWait: {
    flag: "standard-wait-ms", env: "VALAR_STANDARD_WAIT_MS", default: "5", valueName: "MS",
    description: "How long standard-window work may wait, with the engine idle, to start together with more standard work.",
  },
  standardMaxAge: {
    flag: "standard-max-age", env: "VALAR_STANDARD_MAX_AGE", default: "300", valueName: "SECONDS",
    description: "The longest standard-window work waits before it runs as asap work.",
  },
  maxQueued: {
    flag: "max-queued", env: "VALAR_MAX_QUEUED", default: "256", valueName: "N",
    description: "Sync requests that may wait per model; past it new ones get 503 overloaded_error (0: no bound). Background work is never refused.",
  },
  maxBodyMb: {
    flag: "max-body-mb", env: "VALAR_MAX_BODY_MB", default: "32", valueName: "MB",
    description: "Largest request body on every route but /v1/batches, in MiB; a larger one gets 413 request_too_large.",
  },
  maxBatchBodyMb: {
    flag: "max-batch-body-mb", env: "VALAR_MAX_BATCH_BODY_MB", default: "256", valueName: "MB",
    description: "Largest POST /v1/batches body, in MiB; a larger one gets 413 request_too_large.",
  },
  maxQueuedPerKey: {
    flag: "max-queued-per-key", env: "VALAR_MAX_QUEUED_PER_KEY", default: "0", valueName: "N",
    description: "Sync requests one API key may have waiting; past it its new ones get 429 rate_limit_error (0: no bound).",
  },
} as const satisfies Record<string, ServeSetting>;

type SettingName = keyof typeof SERVE_SETTINGS;

/** `serve --help` lines for every setting but `skip`: the flag, then the description with its variable and default. */
export function settingsHelp(skip: SettingName[]): string {
  const WIDTH = 100, INDENT = 4;
  const lines: string[] = [];
  for (const [name, s] of Object.entries(SERVE_SETTINGS) as [SettingName, ServeSetting][]) {
    if (skip.includes(name) || !s.flag) continue;
    lines.push(`  --${s.flag} ${s.valueName}`);
    const words = `${s.description} (env ${s.env}${s.default !== undefined ? `, default ${s.default}` : ""})`.split(" ");
    let line = "";
    for (const w of words) {
      if (line && INDENT + line.length + 1 + w.length > WIDTH) { lines.push(" ".repeat(INDENT) + line); line = w; } else line = line ? `${line} ${w}` : w;
    }
    if (line) lines.push(" ".repeat(INDENT) + line);
  }
  return lines.join("\n");
}

/** The flags of `serve`, in `parseArgs` form, derived from the table. */
export function serveParseOptions() {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const s of Object.values(SERVE_SETTINGS) as ServeSetting[]) {
    if (s.flag) options[s.flag] = { type: "string", multiple: s.multiple ?? false };
  }
  return options;
}

/**
 * The exposure rule, in one place: a server reachable from other machines must require a key,
 * either VALAR_API_KEY or a managed key in the database (`keys create`). Returns why the server
 * must not start, or null. `managedKeys` is only asked when it matters (it may open the database).
 */
export function exposureRefusal(host: string, apiKey: string | undefined, managedKeys: () => boolean, source = "host"): string | null {
  if (isLoopbackHost(host) || apiKey || managedKeys()) return null;
  return `${source}: host ${host} is reachable from other machines; set VALAR_API_KEY or create a key with ` +
    "`valar keys create --org NAME` to require one, or listen on 127.0.0.1";
}

const LOOPBACK_NAMES = new Set(["localhost", "::1", "[::1]", "ip6-localhost"]);

export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase();
  return LOOPBACK_NAMES.has(h) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * The default ID of a model: the file name without its extension, or the directory name for a
 * directory (whose name may contain dots, as in `Qwen2.5-0.5B`).
 */
export function defaultModelId(ref: string): string {
  const path = ref.startsWith("hf:") ? ref.slice(3) : ref;
  const trimmed = path.replace(/[\\/]+$/, "");
  const name = basename(trimmed);
  if (!ref.startsWith("hf:") && existsSync(trimmed) && statSync(trimmed).isDirectory()) return name;
  const ext = extname(name);
  return ext ? name.slice(0, -ext.length) : name;
}

// An ID is what clients type in `model`: keep it to characters that need no escaping anywhere.
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:\-]*$/;

/** Parses `[ID=]REF`. The `=` only separates an ID when what precedes it looks like one. */
export function parseModelSpec(text: string): ModelSpec {
  const spec = text.trim();
  if (!spec) throw new ConfigError("--model: empty model reference");
  const eq = spec.indexOf("=");
  if (eq > 0 && ID_PATTERN.test(spec.slice(0, eq))) {
    const id = spec.slice(0, eq);
    const ref = spec.slice(eq + 1).trim();
    if (!ref) throw new ConfigError(`--model ${text}: no model reference after "${id}="`);
    return { id, ref };
  }
  const id = defaultModelId(spec);
  if (!id) throw new ConfigError(`--model ${text}: cannot derive a model ID; write it as ID=REF`);
  return { id, ref: spec };
}

/** Clients pick a model by ID, so two models cannot share one. */
export function checkUniqueIds(models: ModelSpec[]): ModelSpec[] {
  const seen = new Map<string, string>();
  for (const m of models) {
    const other = seen.get(m.id);
    if (other !== undefined) {
      throw new ConfigError(`two models have the ID "${m.id}" (${other} and ${m.ref}); name one with ID=REF`);
    }
    seen.set(m.id, m.ref);
  }
  return models;
}

const WINDOWS: readonly CompletionWindow[] = ["asap", "standard"];

/** `ID=asap;OTHER=asap,standard`: the windows each named model offers. */
export function parseWindows(raw: string | undefined, source: string = SERVE_SETTINGS.modelWindows.env): Record<string, CompletionWindow[]> | undefined {
  if (!raw) return undefined;
  const out: Record<string, CompletionWindow[]> = {};
  for (const entry of raw.split(";").map((e) => e.trim()).filter(Boolean)) {
    const eq = entry.lastIndexOf("=");
    const id = entry.slice(0, eq).trim();
    const windows = entry.slice(eq + 1).split(",").map((w) => w.trim());
    if (eq <= 0 || windows.some((w) => !(WINDOWS as readonly string[]).includes(w))) {
      throw new ConfigError(`${source}: '${entry}' is not MODEL_ID=WINDOW[,WINDOW] with windows from ${WINDOWS.join(", ")}`);
    }
    out[id] = [...new Set(windows)] as CompletionWindow[];
  }
  return out;
}

/** A non-negative number (a decimal like 0.5 is fine: tests use short waits). */
function parseAmount(text: string, source: string, unit: string): number {
  const n = Number(text.trim());
  if (text.trim() === "" || !Number.isFinite(n) || n < 0) throw new ConfigError(`${source}: must be a non-negative number of ${unit}, got "${text}"`);
  return n;
}

/** A whole number of at least `min`. */
function parseCount(text: string, source: string, min: number): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < min) throw new ConfigError(`${source}: must be a whole number of at least ${min}, got "${text}"`);
  return Number(text);
}

/** `N` (every model) or `ID=N;ID=N` (per model). */
export function parseContexts(raw: string | undefined, source: string): { all?: number; byId?: Record<string, number> } {
  if (!raw) return {};
  if (/^\s*\d+\s*$/.test(raw)) return { all: parseCount(raw, source, 1) };
  const byId: Record<string, number> = {};
  for (const entry of raw.split(";").map((e) => e.trim()).filter(Boolean)) {
    const eq = entry.lastIndexOf("=");
    if (eq <= 0) throw new ConfigError(`${source}: '${entry}' is not MODEL_ID=N`);
    byId[entry.slice(0, eq).trim()] = parseCount(entry.slice(eq + 1), `${source} (${entry})`, 1);
  }
  return { byId };
}

function parsePort(text: string, source: string): number {
  if (!/^\d+$/.test(text.trim())) throw new ConfigError(`${source}: port must be a whole number, got "${text}"`);
  const port = Number(text);
  if (port > 65535) throw new ConfigError(`${source}: port must be between 0 and 65535, got ${port}`);
  return port;
}

/** Flag value if given, else env value if non-empty, else the default; with where it came from. */
function pick(name: SettingName, flags: Record<string, unknown>, env: Record<string, string | undefined>):
  { value: string | undefined; source: string } {
  const s: ServeSetting = SERVE_SETTINGS[name];
  const flagValue = s.flag ? flags[s.flag] : undefined;
  if (typeof flagValue === "string") return { value: flagValue, source: `--${s.flag}` };
  const envValue = env[s.env];
  if (envValue !== undefined && envValue !== "") return { value: envValue, source: s.env };
  return { value: s.default, source: "default" };
}

/**
 * Builds the serve configuration from argv (the arguments after `serve`) and the environment.
 * Throws ConfigError on any bad value; `--help` is the caller's business (see `serveParseOptions`).
 */
export function loadServeConfig(argv: string[], env: Record<string, string | undefined>): ServeConfig {
  let flags: Record<string, unknown>;
  try {
    flags = parseArgs({ args: argv, options: serveParseOptions(), allowPositionals: false, strict: true }).values;
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }

  const modelFlags = (flags.model as string[] | undefined) ?? [];
  const modelTexts = modelFlags.length > 0
    ? modelFlags
    : (env[SERVE_SETTINGS.model.env] ?? "").split(",").filter((s) => s.trim() !== "");
  const models = checkUniqueIds(modelTexts.map(parseModelSpec));

  const host = pick("host", flags, env);
  if (!host.value || /\s/.test(host.value)) throw new ConfigError(`${host.source}: invalid host "${host.value}"`);
  const port = pick("port", flags, env);
  const db = pick("db", flags, env);
  if (!db.value) throw new ConfigError(`${db.source}: empty database path`);
  const modelsDir = pick("modelsDir", flags, env);
  const apiKey = env[SERVE_SETTINGS.apiKey.env] || undefined;
  // The exposure rule also needs the database (managed keys): `serve` applies it with
  // `exposureRefusal` once the configuration is known.
  const ttl = pick("idempotencyTtl", flags, env);
  const timeout = pick("webhookTimeout", flags, env);
  const backoff = pick("webhookBackoff", flags, env);
  const windows = pick("modelWindows", flags, env);
  const webhookBackoffMs = backoff.value!.split(",").map((v) => parseAmount(v, backoff.source, "milliseconds"));

  const optionalCount = (name: SettingName, min: number) => {
    const v = pick(name, flags, env);
    return v.value === undefined ? undefined : parseCount(v.value, v.source, min);
  };
  const count = (name: SettingName, min: number) => optionalCount(name, min)!;
  const context = pick("context", flags, env);
  const contexts = parseContexts(context.value, context.source);
  const maxRunning = count("maxRunning", 1);
  const maxStepTokens = count("maxStepTokens", 1);
  if (maxStepTokens < maxRunning) {
    throw new ConfigError(`--max-step-tokens (${maxStepTokens}) must be at least --max-running (${maxRunning}): every running sequence takes a token of each step`);
  }
  const replicasSetting = pick("replicas", flags, env);
  const replicas = replicasSetting.value === "auto" ? "auto" : parseCount(replicasSetting.value!, replicasSetting.source, 1);
  const wait = pick("standardWait", flags, env);
  const age = pick("standardMaxAge", flags, env);

  const mib = (name: SettingName) => count(name, 1) * 1024 * 1024;
  return {
    replicas,
    maxBodyBytes: mib("maxBodyMb"),
    maxBatchBodyBytes: mib("maxBatchBodyMb"),
    maxContext: contexts.all,
    contexts: contexts.byId,
    batching: { maxRunning, maxStepTokens, kvCacheTokens: optionalCount("kvCacheTokens", 1) },
    scheduling: {
      standardWaitMs: parseAmount(wait.value!, wait.source, "milliseconds"),
      maxAgeMs: parseAmount(age.value!, age.source, "seconds") * 1000,
      maxQueued: count("maxQueued", 0),
      maxQueuedPerKey: count("maxQueuedPerKey", 0),
    },
    models,
    host: host.value,
    port: parsePort(port.value!, port.source),
    db: db.value,
    apiKey,
    modelsDir: modelsDir.value || "models",
    idempotencyTtlMs: parseAmount(ttl.value!, ttl.source, "seconds") * 1000,
    webhookTimeoutMs: parseAmount(timeout.value!, timeout.source, "milliseconds"),
    webhookBackoffMs,
    windows: parseWindows(windows.value, windows.source),
  };
}
