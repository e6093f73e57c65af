// The engine worker: owns the GPU device and the loaded models, runs every generation it is
// sent (each model batches its own: src/engine/batcher.ts), streams tokens back, and stops a
// generation when its cancel message arrives (at the model's next step).

import { acquireDevice, featuresOf, loadModel, type ModelRunner } from "./index.ts";
import { openModel } from "./model/open.ts";
import type { ModelFile } from "./model/types.ts";
import type { EngineStats, HostMessage, WorkerMessage } from "./protocol.ts";
import type { LoadedModel } from "./types.ts";
import { createGrammarFactory, type GrammarFactory, type GrammarMatcher } from "./grammar/index.ts";
import { createTokenizer } from "./tokenizer/index.ts";

declare const self: Worker;

interface Resident {
  model: LoadedModel & ModelRunner;
  file: ModelFile;
  /** For constrained generations; built on the first one (the vocabulary takes ~0.1-0.5 s). */
  grammar?: Promise<GrammarFactory>;
}

const models = new Map<string, Resident>();
const running = new Map<number, AbortController>();
const counters: EngineStats["generations"] = { started: 0, finished: 0, cancelled: 0, failed: 0, tokens: 0 };
let devicePromise: Promise<GPUDevice> | null = null;
let deviceInfo: EngineStats["device"] = null;

function post(m: WorkerMessage) {
  self.postMessage(m);
}

function device(): Promise<GPUDevice> {
  devicePromise ??= acquireDevice().then((d) => {
    deviceInfo = {
      description: (d as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo?.description ?? "WebGPU device",
      features: { shaderF16: d.features.has("shader-f16"), subgroups: d.features.has("subgroups") },
      cpu: featuresOf(d).cpuLanes,
    };
    return d;
  });
  return devicePromise.catch((e) => { devicePromise = null; throw e; });
}

const handlers: { [K in HostMessage["type"]]: (m: Extract<HostMessage, { type: K }>) => Promise<void> } = {
  async load(m) {
    if (models.has(m.id)) throw new Error(`a model with id "${m.id}" is already loaded`);
    const file = openModel(m.ref);
    try {
      // A message per percent at most: a large file has thousands of tensors.
      let reported = -1;
      const onUpload = (done: number, total: number) => {
        const percent = Math.floor((done / total) * 100);
        if (percent === reported) return;
        reported = percent;
        post({ type: "progress", req: m.req, done, total });
      };
      const model = await loadModel(await device(), file, { ...m.settings, onUpload });
      models.set(m.id, { model, file });
      const { shape, kvPages } = model.options;
      post({
        type: "loaded", req: m.req,
        model: { id: m.id, arch: model.arch, nVocab: model.nVocab, nCtx: model.nCtx, maxRunning: shape.maxRows, maxStepTokens: shape.maxTokens, kvPages, pageSize: shape.pageSize },
      });
    } catch (e) {
      file.close();
      throw e;
    }
  },

  async generate(m) {
    const r = models.get(m.modelId);
    if (!r) throw new Error(`no model "${m.modelId}" is loaded`);
    const ctl = new AbortController();
    running.set(m.req, ctl);
    counters.started++;
    let matcher: GrammarMatcher | undefined;
    try {
      if (m.opts.constraint) {
        r.grammar ??= createGrammarFactory(createTokenizer(r.file), r.model.nVocab);
        const factory = await r.grammar.catch((e) => { r.grammar = undefined; throw e; });
        matcher = (await factory.compile(m.opts.constraint)).matcher();
      }
      const gen = r.model.generate(m.promptIds, { ...m.opts, signal: ctl.signal }, matcher);
      for (;;) {
        const next = await gen.next();
        if (next.done) {
          counters[next.value.finishReason === "cancelled" ? "cancelled" : "finished"]++;
          post({ type: "done", req: m.req, finishReason: next.value.finishReason, timings: next.value.timings });
          return;
        }
        counters.tokens++;
        post({ type: "token", req: m.req, token: next.value });
      }
    } catch (e) {
      counters.failed++;
      throw e;
    } finally {
      matcher?.dispose();
      running.delete(m.req);
    }
  },

  async cancel(m) {
    running.get(m.req)?.abort();
  },

  async unload(m) {
    const r = models.get(m.id);
    if (!r) return post({ type: "failure", req: m.req, message: `no model "${m.id}" is loaded` });
    // generations still running fail: their model is gone
    models.delete(m.id);
    r.model.dispose();
    r.file.close();
    post({ type: "unloaded", req: m.req });
  },

  async stats(m) {
    post({
      type: "stats",
      req: m.req,
      stats: {
        device: deviceInfo,
        models: [...models.entries()].map(([id, r]) => {
          const { shape, kvPages } = r.model.options;
          return {
            id, arch: r.model.arch, nVocab: r.model.nVocab, nCtx: r.model.nCtx, maxRunning: shape.maxRows, maxStepTokens: shape.maxTokens,
            kvPages, pageSize: shape.pageSize, path: r.file.path, weightBytes: r.model.weightBytes, deviceBytes: r.model.deviceBytes, dispatchesPerToken: r.model.dispatchesPerToken,
            ...r.model.stats(),
          };
        }),
        generations: { ...counters },
      },
    });
  },

  async device(m) {
    await device();
    post({ type: "device", req: m.req, device: deviceInfo! });
  },

  async close(m) {
    for (const ctl of running.values()) ctl.abort();
    for (const r of models.values()) { r.model.dispose(); r.file.close(); }
    models.clear();
    // the device too: a terminated worker does not free its native device (on lavapipe its
    // compiled pipelines stay mapped, and a process that starts many engines runs out of maps)
    if (devicePromise) (await devicePromise.catch(() => null))?.destroy();
    devicePromise = null;
    post({ type: "closed", req: m.req });
    process.nextTick?.(() => self.terminate?.());
  },
};

self.onmessage = (ev: MessageEvent<HostMessage>) => {
  const m = ev.data;
  const handler = handlers[m.type] as ((m: HostMessage) => Promise<void>) | undefined;
  if (!handler) {
    post({ type: "failure", req: (m as { req?: number }).req ?? -1, message: `unknown engine message type "${(m as { type?: string }).type}"` });
    return;
  }
  handler(m).catch((e: unknown) => {
    post({ type: "failure", req: m.req, message: e instanceof Error ? e.message : String(e) });
  });
};

post({ type: "ready" });
