// `valar serve`: resolve the models (pulling hf: refs), check them, then serve the HTTP API.

import { existsSync } from "node:fs";
import { checkUniqueIds, ConfigError, DEFAULT_MODEL_REF, exposureRefusal, loadServeConfig, parseModelSpec, type ModelSpec, type ServeConfig } from "../config.ts";
import { closeDb, openDb } from "../store/db.ts";
import { hasActiveKeys } from "../store/keys.ts";
import { elementCount } from "../engine/model/ggml-types.ts";
import { openModel } from "../engine/model/open.ts";
import { createProgress, formatBytes, type Progress } from "../hub/progress.ts";
import { PullError } from "../hub/pull.ts";
import { findLocalModels, resolveModelRef } from "../hub/resolve.ts";
import { findWebGPUAdapter, NO_ADAPTER_MESSAGE } from "./gpu-check.ts";

const log = (line: string) => process.stderr.write(`${line}\n`);

/** The models to serve: those named, else those in the models directory, else the default (pulled). */
export function chooseModels(config: ServeConfig): { specs: ModelSpec[]; origin: string } {
  if (config.models.length > 0) return { specs: config.models, origin: "named" };
  const local = findLocalModels(config.modelsDir);
  if (local.length > 0) return { specs: checkUniqueIds(local.map((p) => parseModelSpec(p))), origin: `found in ${config.modelsDir}/` };
  return { specs: [parseModelSpec(DEFAULT_MODEL_REF)], origin: "default" };
}

/** One line about a model file: architecture, parameters, bytes, from its header only. */
export function summarize(path: string): string {
  const model = openModel(path);
  try {
    const arch = String(model.metadata.get("general.architecture") ?? "unknown architecture");
    let params = 0;
    let bytes = 0;
    for (const t of model.tensors) {
      params += elementCount(t.dims);
      bytes += t.nbytes;
    }
    const millions = params / 1e6;
    return `${arch}, ${millions >= 100 ? millions.toFixed(0) : millions.toFixed(2)}M parameters, ${formatBytes(bytes)} of weights in ${model.tensors.length} tensors`;
  } finally {
    model.close();
  }
}

/** Whether the database holds a usable managed key; a database that does not exist yet holds none (and is not created here). */
export function managedKeysIn(dbPath: string): boolean {
  if (!existsSync(dbPath)) return false;
  const db = openDb(dbPath);
  try {
    return hasActiveKeys(db);
  } finally {
    closeDb(db);
  }
}

/** `--dry-run` is about this invocation, not a setting of the server, so it is not in the config table. */
const DRY_RUN = "--dry-run";

export async function run(argv: string[]): Promise<number> {
  const dryRun = argv.includes(DRY_RUN);
  const config = loadServeConfig(argv.filter((a) => a !== DRY_RUN), process.env);
  const refusal = exposureRefusal(config.host, config.apiKey, () => managedKeysIn(config.db), hostSource(argv));
  if (refusal) throw new ConfigError(refusal);

  // Before any download: without a GPU adapter nothing below can work.
  const adapter = await findWebGPUAdapter();
  if (!adapter) {
    log(NO_ADAPTER_MESSAGE);
    return 1;
  }
  log(`WebGPU adapter: ${adapter}`);

  const { specs, origin } = chooseModels(config);
  if (origin === "default") log(`no model named and none in ${config.modelsDir}/: pulling the default ${DEFAULT_MODEL_REF}`);
  const models: ModelSpec[] = [];
  for (const spec of specs) {
    const path = await resolveModelRef(spec.ref, config.modelsDir).catch((err: Error) => {
      if (origin === "default" && err instanceof PullError) {
        err.message += `\n(to serve without downloading, put a .gguf file or a model directory in ${config.modelsDir}/, or pass --model PATH)`;
      }
      throw err;
    });
    log(`model ${spec.id}: ${summarize(path)} (${path === spec.ref ? path : `${spec.ref} -> ${path}`})`);
    models.push({ id: spec.id, ref: path });
  }
  if (dryRun) {
    log(`dry run: would serve ${models.map((m) => m.id).join(", ")} on ${config.host}:${config.port} (db ${config.db})`);
    return 0;
  }
  return serveHttp({ ...config, models });
}

/** A bar per model of the weights going up to the device (large files take minutes). */
function uploadBars(): (modelId: string, done: number, total: number) => void {
  const bars = new Map<string, Progress>();
  return (modelId, done, total) => {
    let bar = bars.get(modelId);
    if (!bar) {
      bar = createProgress(modelId, process.stderr, undefined, "uploading weights to the device");
      bar.start(total, 0);
      bars.set(modelId, bar);
    }
    if (done >= total) {
      bar.finish(done);
      bars.delete(modelId);
    } else bar.update(done);
  };
}

/** Where the host came from, for the refusal message. */
const hostSource = (argv: string[]) => (argv.some((a) => a === "--host" || a.startsWith("--host=")) ? "--host" : process.env.VALAR_HOST ? "VALAR_HOST" : "host");

/** Serves until SIGINT or SIGTERM, then stops cleanly (in-flight work is the server's business). */
async function serveHttp(config: ServeConfig): Promise<number> {
  const { startServer } = await import("../server.ts");
  const server = await startServer({
    ...config,
    webhooks: { timeoutMs: config.webhookTimeoutMs, backoffMs: config.webhookBackoffMs },
    onLoadProgress: uploadBars(),
  });
  log(`listening on ${server.url} (models: ${config.models.map((m) => m.id).join(", ")}; db ${config.db})`);
  const signal = await new Promise<string>((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => resolve(sig));
  });
  log(`${signal}: stopping`);
  await server.stop();
  return 0;
}
