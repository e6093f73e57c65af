// `valar/browser`: the engine in your own page. It runs in a Web Worker on the page's WebGPU and
// answers OpenAI-shaped chat requests, with WebLLM's `MLCEngine` interface:
//
//   const engine = await CreateMLCEngine("/v1/models/stories15M-q8_0/file", { initProgressCallback });
//   const reply = await engine.chat.completions.create({ messages: [{ role: "user", content: "Hi" }] });
//   for await (const chunk of await engine.chat.completions.create({ messages, stream: true })) …
//
// The model is a URL of a GGUF file (kept in Cache Storage after the first download), a File or
// Blob (a dropped .gguf), or its bytes.

import type { GenerationMessage } from "../generation.ts";
import type { OutputConstraint } from "../engine/grammar/constraint.ts";
import type { EngineWorkerMessage, PageMessage, WorkerChat, WorkerModelInfo } from "./protocol.ts";
import type {
  ChatCompletion, ChatCompletionChunk, ChatCompletionFinishReason, ChatCompletionMessageParam, ChatCompletionRequest,
  ChatCompletionRequestNonStreaming, ChatCompletionRequestStreaming, CompletionUsage, InitProgressCallback,
} from "./openai-types.ts";
import { fetchWeights } from "./weights-cache.ts";

export type * from "./openai-types.ts";
export type { WorkerModelInfo } from "./protocol.ts";

export type ModelSource = string | URL | Blob | ArrayBuffer;

export interface EngineConfig {
  initProgressCallback?: InitProgressCallback;
  /** The engine worker's script (default: valar-engine-worker.js beside this module). */
  workerUrl?: string | URL;
  /** Sent with the model download (e.g. `authorization` for a server with API keys). */
  headers?: Record<string, string>;
  /** Keep downloaded models in Cache Storage (default true). */
  cache?: boolean;
  /** Context length (default: the model's, capped at 4096). */
  maxContext?: number;
}

/** A request the engine cannot run as given; `param` names the field, as the server's 400s do. */
export class InvalidRequestError extends Error {
  override name = "InvalidRequestError";
  constructor(message: string, readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
  }
}

interface Pending {
  resolve: (m: EngineWorkerMessage) => void;
  reject: (e: Error) => void;
  onDelta?: (text: string) => void;
  onProgress?: (done: number, total: number) => void;
}

const defaultWorkerUrl = () => new URL("./valar-engine-worker.js", import.meta.url);

function contentText(content: ChatCompletionMessageParam["content"]): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  return content.filter((p) => p.type === "text").map((p) => p.text).join("\n");
}

function numberIn(name: string, v: number | null | undefined, lo: number, hi: number, fallback: number): number {
  if (v == null) return fallback;
  if (typeof v !== "number" || !(v >= lo && v <= hi)) throw new InvalidRequestError(`'${name}' must be a number from ${lo} to ${hi}, got ${v}.`, name, "invalid_value");
  return v;
}

function constraintOf(format: ChatCompletionRequest["response_format"]): OutputConstraint | null {
  if (!format || format.type === "text") return null;
  if (format.type === "json_object") {
    if (format.schema === undefined) return { type: "json_object" };
    try {
      return { type: "json_schema", schema: JSON.parse(format.schema) };
    } catch {
      throw new InvalidRequestError("'response_format.schema' must be a JSON schema as a string.", "response_format.schema", "invalid_schema");
    }
  }
  if (format.type === "json_schema") {
    const js = format.json_schema;
    if (!js || typeof js.name !== "string") throw new InvalidRequestError("'response_format.json_schema.name' is required.", "response_format.json_schema.name", "missing_required_parameter");
    return { type: "json_schema", schema: js.schema ?? {}, ...(js.strict != null ? { strict: js.strict } : {}) };
  }
  throw new InvalidRequestError(`'response_format.type' must be one of 'text', 'json_object', 'json_schema'.`, "response_format.type", "invalid_value");
}

/** The engine's terms for an OpenAI request; a field it cannot honour is an InvalidRequestError naming it. */
export function workerChat(req: ChatCompletionRequest): WorkerChat {
  if (!Array.isArray(req.messages) || req.messages.length === 0) throw new InvalidRequestError("'messages' must be a non-empty array.", "messages", "invalid_value");
  const roles = new Set(["system", "developer", "user", "assistant"]);
  const messages: GenerationMessage[] = req.messages.map((m, i) => {
    if (!m || !roles.has(m.role)) throw new InvalidRequestError(`'messages[${i}].role' must be one of ${[...roles].join(", ")}.`, `messages[${i}].role`, "invalid_value");
    return { role: m.role, content: contentText(m.content) };
  });
  if (req.n != null && req.n !== 1) throw new InvalidRequestError("'n' must be 1: the engine returns one choice.", "n", "unsupported_value");
  if (req.stream_options != null && req.stream !== true) throw new InvalidRequestError("'stream_options' is only allowed when 'stream' is true.", "stream_options", "invalid_value");
  const maxName = req.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens";
  const maxTokens = req.max_completion_tokens ?? req.max_tokens ?? null;
  if (maxTokens !== null && !(Number.isInteger(maxTokens) && maxTokens > 0)) throw new InvalidRequestError(`'${maxName}' must be a positive integer, got ${maxTokens}.`, maxName, "invalid_value");
  if (req.seed != null && !Number.isInteger(req.seed)) throw new InvalidRequestError(`'seed' must be an integer, got ${req.seed}.`, "seed", "invalid_value");
  return {
    messages,
    maxTokens,
    temperature: numberIn("temperature", req.temperature, 0, 2, 1),
    topP: numberIn("top_p", req.top_p, 0, 1, 1),
    ...(req.seed != null ? { seed: req.seed } : {}),
    constraint: constraintOf(req.response_format),
  };
}

const FINISH: Record<string, ChatCompletionFinishReason> = { stop: "stop", length: "length", cancelled: "abort" };

export class ValarEngine {
  private nextReq = 1;
  private pending = new Map<number, Pending>();
  private dead: Error | null = null;
  private lastMessage = "";
  private lastUsage: CompletionUsage | null = null;
  private readonly chats = new Set<number>();
  /** The loaded model, its GPU adapter and context. */
  model: WorkerModelInfo | null = null;
  /** Whether the last load came from the browser's cache rather than the network. */
  fromCache = false;
  private name = "model";

  readonly chat = {
    completions: {
      create: ((req: ChatCompletionRequest) => (req.stream === true ? this.stream(req) : this.complete(req))) as {
        (req: ChatCompletionRequestNonStreaming): Promise<ChatCompletion>;
        (req: ChatCompletionRequestStreaming): Promise<AsyncIterable<ChatCompletionChunk>>;
        (req: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
      },
    },
  };

  private constructor(private readonly worker: Worker, private config: EngineConfig) {
    worker.onmessage = (ev: MessageEvent<EngineWorkerMessage>) => this.receive(ev.data);
    worker.onerror = (ev: ErrorEvent) => this.fail(new Error(`the engine worker crashed: ${ev.message}`));
  }

  /** Starts the worker and loads `model`. */
  static async create(model: ModelSource, config: EngineConfig = {}): Promise<ValarEngine> {
    const worker = new Worker(config.workerUrl ?? defaultWorkerUrl(), { type: "module" });
    await new Promise<void>((resolve, reject) => {
      worker.onmessage = (ev: MessageEvent<EngineWorkerMessage>) => { if (ev.data.type === "ready") resolve(); };
      worker.onerror = (ev: ErrorEvent) => reject(new Error(`the engine worker failed to start: ${ev.message || "script error"}`));
    });
    const engine = new ValarEngine(worker, config);
    await engine.reload(model, config);
    return engine;
  }

  private receive(m: EngineWorkerMessage) {
    if (m.type === "ready") return;
    const p = this.pending.get(m.req);
    if (!p) return;
    if (m.type === "delta") return p.onDelta?.(m.text);
    if (m.type === "progress") return p.onProgress?.(m.done, m.total);
    this.pending.delete(m.req);
    if (m.type === "failure") p.reject(m.code ? new InvalidRequestError(m.message, "messages", m.code) : new Error(m.message));
    else p.resolve(m);
  }

  private fail(e: Error) {
    this.dead = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private send(msg: PageMessage, extra: Partial<Pending> = {}): Promise<EngineWorkerMessage> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.pending.set(msg.req, { resolve, reject, ...extra });
      this.worker.postMessage(msg);
    });
  }

  /** Loads another model in place of the current one. */
  async reload(model: ModelSource, config: EngineConfig = this.config): Promise<void> {
    this.config = config;
    const started = performance.now();
    const report = (progress: number, text: string) => config.initProgressCallback?.({ progress, timeElapsed: (performance.now() - started) / 1000, text });
    if (this.model) await this.unload();
    let file: Blob | ArrayBuffer;
    const mb = (n: number) => (n / 1e6).toFixed(1);
    if (typeof model === "string" || model instanceof URL) {
      const url = new URL(model, globalThis.location?.href).href;
      this.name = decodeURIComponent(url.split("/").filter(Boolean).at(url.endsWith("/file") ? -2 : -1) ?? "model");
      report(0, "Checking the browser cache");
      const fetched = await fetchWeights(url, {
        headers: config.headers,
        cache: config.cache,
        onProgress: (got, total) => report(total ? 0.5 * (got / total) : 0, `Downloading ${mb(got)}${total ? ` of ${mb(total)}` : ""} MB`),
      });
      file = fetched.blob;
      this.fromCache = fetched.fromCache;
      report(0.5, fetched.fromCache ? `Loaded ${mb(file.size)} MB from the browser cache` : `Downloaded ${mb(file.size)} MB`);
    } else {
      file = model;
      this.fromCache = false;
      this.name = (model as File).name?.replace(/\.gguf$/i, "") || "model";
    }
    const req = this.nextReq++;
    const loaded = await this.send({ type: "load", req, name: this.name, file, ...(config.maxContext ? { maxContext: config.maxContext } : {}) }, {
      onProgress: (done, total) => report(0.5 + 0.5 * (done / total), `Uploading weights to the GPU: ${Math.floor((done / total) * 100)}%`),
    });
    this.model = (loaded as Extract<EngineWorkerMessage, { type: "loaded" }>).model;
    report(1, `Ready: ${this.name} on ${this.model.adapter}`);
  }

  /** Stops every generation in progress (they finish with finish_reason "abort"). */
  interruptGenerate(): void {
    for (const req of this.chats) this.worker.postMessage({ type: "cancel", req } satisfies PageMessage);
  }

  async unload(): Promise<void> {
    await this.send({ type: "unload", req: this.nextReq++ });
    this.model = null;
  }

  /** The last reply's text. */
  async getMessage(): Promise<string> {
    return this.lastMessage;
  }

  async runtimeStatsText(): Promise<string> {
    const u = this.lastUsage?.extra;
    return u ? `prefill: ${u.prefill_tokens_per_s.toFixed(1)} tokens/sec, decoding: ${u.decode_tokens_per_s.toFixed(1)} tokens/sec` : "no generation yet";
  }

  /** Stops the worker; the engine cannot be used after. */
  terminate(): void {
    this.worker.terminate();
    this.fail(new Error("the engine was terminated"));
  }

  /** Runs one chat in the worker; `onDelta` gets text as it comes. */
  private async run(req: ChatCompletionRequest, onDelta: (text: string) => void, signal?: { cancel?: () => void }) {
    if (!this.model) throw new Error("no model is loaded");
    const chat = workerChat(req);
    const id = this.nextReq++;
    const started = performance.now();
    let firstAt: number | null = null;
    let text = "";
    this.chats.add(id);
    if (signal) signal.cancel = () => this.worker.postMessage({ type: "cancel", req: id } satisfies PageMessage);
    try {
      const done = (await this.send({ type: "chat", req: id, chat }, {
        onDelta: (t) => { firstAt ??= performance.now(); text += t; onDelta(t); },
      })) as Extract<EngineWorkerMessage, { type: "done" }>;
      const seconds = (ms: number) => ms / 1000;
      const usage: CompletionUsage = {
        prompt_tokens: done.promptTokens,
        completion_tokens: done.outputTokens,
        total_tokens: done.promptTokens + done.outputTokens,
        extra: {
          e2e_latency_s: seconds(performance.now() - started),
          time_to_first_token_s: seconds((firstAt ?? performance.now()) - started),
          prefill_tokens_per_s: done.timings.prefillMs > 0 ? done.timings.promptTokens / seconds(done.timings.prefillMs) : 0,
          decode_tokens_per_s: done.timings.decodeMs > 0 && done.outputTokens > 1 ? (done.outputTokens - 1) / seconds(done.timings.decodeMs) : 0,
        },
      };
      this.lastMessage = text;
      this.lastUsage = usage;
      return { text, usage, finish: FINISH[done.finishReason] ?? "stop" };
    } finally {
      this.chats.delete(id);
    }
  }

  private async complete(req: ChatCompletionRequestNonStreaming): Promise<ChatCompletion> {
    const r = await this.run(req, () => {});
    return {
      id: `chatcmpl-${crypto.randomUUID()}`, object: "chat.completion", created: Math.floor(Date.now() / 1000), model: this.name,
      choices: [{ index: 0, message: { role: "assistant", content: r.text }, finish_reason: r.finish, logprobs: null }],
      usage: r.usage,
    };
  }

  private async stream(req: ChatCompletionRequestStreaming): Promise<AsyncIterable<ChatCompletionChunk>> {
    workerChat(req); // a bad request throws here, before the caller starts iterating
    const id = `chatcmpl-${crypto.randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const model = this.name;
    const chunk = (delta: ChatCompletionChunk["choices"][number]["delta"], finish: ChatCompletionFinishReason | null): ChatCompletionChunk =>
      ({ id, object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] });
    const queue: string[] = [];
    let wake: (() => void) | null = null;
    const control: { cancel?: () => void } = {};
    const finished = this.run(req, (t) => { queue.push(t); wake?.(); }, control);
    let settled = false;
    finished.then(() => { settled = true; wake?.(); }, () => { settled = true; wake?.(); });
    const includeUsage = req.stream_options?.include_usage === true;
    return (async function* () {
      let completed = false;
      try {
        yield chunk({ role: "assistant", content: "" }, null);
        for (;;) {
          while (queue.length > 0) {
            const t = queue.shift()!;
            if (t) yield chunk({ content: t }, null);
          }
          if (settled) break;
          await new Promise<void>((r) => { wake = r; });
          wake = null;
        }
        const r = await finished;
        completed = true;
        yield chunk({}, r.finish);
        if (includeUsage) yield { id, object: "chat.completion.chunk", created, model, choices: [], usage: r.usage } satisfies ChatCompletionChunk;
      } finally {
        // the caller left the loop early: stop the generation
        if (!completed) { control.cancel?.(); await finished.catch(() => undefined); }
      }
    })();
  }
}

/** Starts an engine on `model` (WebLLM's CreateMLCEngine, with a model file instead of a model id). */
export function CreateMLCEngine(model: ModelSource, config: EngineConfig = {}): Promise<ValarEngine> {
  return ValarEngine.create(model, config);
}

