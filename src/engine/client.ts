// Host side of the engine worker: a promise API over the typed messages of protocol.ts. The
// HTTP thread never touches the GPU; it sends token ids and receives tokens.

import type { FinishReason, GeneratedToken, GenerationTimings } from "./types.ts";
import type { DeviceInfo, EngineStats, GenerateRequest, HostMessage, LoadSettings, ModelSummary, WorkerMessage } from "./protocol.ts";

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface Pending {
  resolve: (m: WorkerMessage) => void;
  reject: (e: Error) => void;
  onToken?: (t: GeneratedToken) => void;
  onProgress?: (done: number, total: number) => void;
}

export class EngineClient {
  private nextReq = 1;
  private pending = new Map<number, Pending>();
  private dead: Error | null = null;

  private constructor(private worker: Worker) {
    worker.onmessage = (ev: MessageEvent<WorkerMessage>) => this.receive(ev.data);
    worker.onerror = (ev: ErrorEvent) => this.fail(new Error(`engine worker crashed: ${ev.message}`));
  }

  static start(): Promise<EngineClient> {
    const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("engine worker did not start within 60 s")), 60_000);
      worker.onmessage = (ev: MessageEvent<WorkerMessage>) => {
        if (ev.data.type !== "ready") return;
        clearTimeout(timer);
        resolve(new EngineClient(worker));
      };
      worker.onerror = (ev: ErrorEvent) => { clearTimeout(timer); reject(new Error(`engine worker failed to start: ${ev.message}`)); };
    });
  }

  private receive(m: WorkerMessage) {
    if (m.type === "ready") return;
    const p = this.pending.get(m.req);
    if (!p) return;
    if (m.type === "token") { p.onToken?.(m.token); return; }
    if (m.type === "progress") { p.onProgress?.(m.done, m.total); return; }
    this.pending.delete(m.req);
    if (m.type === "failure") p.reject(new Error(m.message));
    else p.resolve(m);
  }

  private fail(e: Error) {
    this.dead = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private request(msg: DistributiveOmit<HostMessage, "req">, onToken?: (t: GeneratedToken) => void, req = this.nextReq++): Promise<WorkerMessage> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.pending.set(req, { resolve, reject, onToken });
      this.worker.postMessage({ ...msg, req } as HostMessage);
    });
  }

  /** `onProgress` is told the file's tensor bytes on the device as the weights go up. */
  async load(id: string, ref: string, settings: LoadSettings = {}, onProgress?: (done: number, total: number) => void): Promise<ModelSummary> {
    const req = this.nextReq++;
    const done = this.request({ type: "load", id, ref, settings }, undefined, req);
    if (onProgress) this.pending.get(req)!.onProgress = onProgress;
    const m = await done;
    return (m as Extract<WorkerMessage, { type: "loaded" }>).model;
  }

  /** Streams tokens to `onToken`; aborting `signal` stops generation between decode steps ("cancelled"). */
  async generate(
    modelId: string,
    promptIds: number[],
    opts: GenerateRequest,
    onToken: (t: GeneratedToken) => void,
    signal?: AbortSignal,
  ): Promise<{ finishReason: FinishReason; timings: GenerationTimings }> {
    const req = this.nextReq++;
    const cancel = () => { if (!this.dead) this.worker.postMessage({ type: "cancel", req } satisfies HostMessage); };
    const done = this.request({ type: "generate", modelId, promptIds, opts }, onToken, req);
    if (signal?.aborted) cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      const m = (await done) as Extract<WorkerMessage, { type: "done" }>;
      return { finishReason: m.finishReason, timings: m.timings };
    } finally {
      signal?.removeEventListener("abort", cancel);
    }
  }

  async unload(id: string): Promise<void> {
    await this.request({ type: "unload", id });
  }

  async stats(): Promise<EngineStats> {
    const m = await this.request({ type: "stats" });
    return (m as Extract<WorkerMessage, { type: "stats" }>).stats;
  }

  /** Acquires the worker's device now and describes it. */
  async device(): Promise<DeviceInfo> {
    const m = await this.request({ type: "device" });
    return (m as Extract<WorkerMessage, { type: "device" }>).device;
  }

  async close(): Promise<void> {
    if (this.dead) return;
    try {
      await Promise.race([this.request({ type: "close" }), new Promise((r) => setTimeout(r, 5000))]);
    } finally {
      this.worker.terminate();
      this.fail(new Error("engine client is closed"));
    }
  }
}
