// The engine in a page's Web Worker: owns the page's WebGPU device and one model, and runs the
// whole request there (chat template, tokenizer, grammar, sampling, detokenizing), so the page
// sends a conversation and receives text. The same src/engine code as the server's worker.

import { acquireDevice, featuresOf, loadModel, type ModelRunner } from "../engine/index.ts";
import { blobSource, memorySource } from "../engine/model/byte-source.ts";
import { parseGGUF } from "../engine/model/gguf-parse.ts";
import type { LoadedModel } from "../engine/types.ts";
import { createGrammarFactory, type GrammarFactory, type GrammarMatcher } from "../engine/grammar/index.ts";
import { preparePrompt, PromptError, PromptTooLong, servedModel, type ServedModel } from "../scheduler/served-model.ts";
import type { EngineWorkerMessage, PageMessage } from "./protocol.ts";

interface Resident {
  model: LoadedModel & ModelRunner;
  host: ServedModel;
  grammar?: Promise<GrammarFactory>;
}

const scope = globalThis as unknown as { postMessage(m: EngineWorkerMessage): void; onmessage: ((ev: MessageEvent<PageMessage>) => void) | null };
const post = (m: EngineWorkerMessage) => scope.postMessage(m);

let devicePromise: Promise<GPUDevice> | null = null;
let resident: Resident | null = null;
const running = new Map<number, AbortController>();

function adapterName(device: GPUDevice): string {
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const name = info ? [info.vendor, info.architecture, info.description].filter(Boolean).join(" ").trim() : "";
  return name || "WebGPU adapter";
}

const handlers: { [K in PageMessage["type"]]: (m: Extract<PageMessage, { type: K }>) => Promise<void> } = {
  async load(m) {
    if (resident) throw new Error("a model is already loaded: unload it first");
    devicePromise ??= acquireDevice();
    const device = await devicePromise.catch((e) => { devicePromise = null; throw e; });
    const source = m.file instanceof Blob ? blobSource(m.name, m.file) : memorySource(m.name, new Uint8Array(m.file));
    const file = parseGGUF(source);
    let reported = -1;
    const onUpload = (done: number, total: number) => {
      const percent = Math.floor((done / total) * 100);
      if (percent !== reported) { reported = percent; post({ type: "progress", req: m.req, done, total }); }
    };
    const model = await loadModel(device, file, { ...(m.maxContext ? { maxContext: m.maxContext } : {}), maxRunning: 4, onUpload });
    const host = servedModel(file, { id: m.name, ref: m.name }, { arch: model.arch, nCtx: model.nCtx, nVocab: model.nVocab, maxRunning: 4 });
    resident = { model, host };
    const features = featuresOf(device);
    post({ type: "loaded", req: m.req, model: { arch: model.arch, nCtx: model.nCtx, nVocab: model.nVocab, adapter: adapterName(device), features: { shaderF16: features.shaderF16, subgroups: features.subgroups } } });
  },

  async chat(m) {
    const r = resident;
    if (!r) throw new Error("no model is loaded");
    const { chat } = m;
    let prompt: { promptIds: number[]; maxTokens: number };
    try {
      prompt = preparePrompt(r.host, { input: { kind: "messages", messages: chat.messages }, tools: [], thinking: null, maxOutputTokens: chat.maxTokens });
    } catch (e) {
      if (e instanceof PromptError) return post({ type: "failure", req: m.req, message: e.message, code: e instanceof PromptTooLong ? "prompt_too_long" : "invalid_prompt" });
      throw e;
    }
    const ctl = new AbortController();
    running.set(m.req, ctl);
    let matcher: GrammarMatcher | undefined;
    try {
      if (chat.constraint) {
        r.grammar ??= createGrammarFactory(r.host.tokenizer, r.model.nVocab);
        const factory = await r.grammar.catch((e) => { r.grammar = undefined; throw e; });
        matcher = (await factory.compile(chat.constraint)).matcher();
      }
      const decoder = r.host.tokenizer.decoder();
      const sampling = { temperature: chat.temperature, topP: chat.topP, ...(chat.seed !== undefined ? { seed: chat.seed } : {}) };
      const gen = r.model.generate(prompt.promptIds, { maxTokens: prompt.maxTokens, sampling, stopIds: r.host.tokenizer.stopIds, signal: ctl.signal }, matcher);
      let outputTokens = 0;
      for (;;) {
        const next = await gen.next();
        if (next.done) {
          const tail = decoder.flush();
          if (tail) post({ type: "delta", req: m.req, text: tail });
          post({ type: "done", req: m.req, finishReason: next.value.finishReason, promptTokens: prompt.promptIds.length, outputTokens, timings: next.value.timings });
          return;
        }
        outputTokens++;
        post({ type: "delta", req: m.req, text: decoder.push(next.value.id) });
      }
    } finally {
      matcher?.dispose();
      running.delete(m.req);
    }
  },

  async cancel(m) {
    running.get(m.req)?.abort();
  },

  async unload(m) {
    for (const ctl of running.values()) ctl.abort();
    resident?.model.dispose();
    resident = null;
    post({ type: "unloaded", req: m.req });
  },
};

scope.onmessage = (ev) => {
  const m = ev.data;
  const handler = handlers[m.type] as ((m: PageMessage) => Promise<void>) | undefined;
  if (!handler) return post({ type: "failure", req: (m as { req?: number }).req ?? -1, message: `unknown message type "${(m as { type?: string }).type}"` });
  handler(m).catch((e: unknown) => post({ type: "failure", req: m.req, message: e instanceof Error ? e.message : String(e) }));
};

post({ type: "ready" });
