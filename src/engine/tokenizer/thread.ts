// A tokenizer off the calling thread: texts go to a worker (encode-worker.ts) that holds the
// models' tokenizers, and their ids come back. The server tokenizes long prompts here so that
// `/health` and every other request keep being answered meanwhile; short ones, which take
// microseconds, stay on the calling thread (ModelRegistry decides).

export interface EncodeRequest {
  id: number;
  /** The model file whose tokenizer encodes it. */
  ref: string;
  text: string;
  addBos?: boolean;
  parseSpecial?: boolean;
}

export type EncodeReply = { id: number; ids: Int32Array } | { id: number; error: string };

const START_TIMEOUT_MS = 60_000;

interface Pending {
  resolve: (ids: number[]) => void;
  reject: (e: Error) => void;
}

export class TokenizerThread {
  private worker: Promise<Worker> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  async encode(ref: string, text: string, opts: { addBos?: boolean; parseSpecial?: boolean } = {}): Promise<number[]> {
    const worker = await (this.worker ??= this.spawn());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, ref, text, ...opts } satisfies EncodeRequest);
    });
  }

  /** Stops the worker; what is pending fails (a later encode starts a new one). */
  close(): void {
    void this.worker?.then((w) => w.terminate(), () => undefined);
    this.worker = null;
    this.failAll(new Error("the tokenizer thread was closed"));
  }

  private failAll(e: Error) {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private spawn(): Promise<Worker> {
    const worker = new Worker(new URL("./encode-worker.ts", import.meta.url).href, { type: "module" });
    // An idle tokenizer must not keep the process alive.
    (worker as Worker & { unref?(): void }).unref?.();
    const started = new Promise<Worker>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the tokenizer worker did not start within 60 s")), START_TIMEOUT_MS);
      worker.onmessage = (ev: MessageEvent<EncodeReply | { type: "ready" }>) => {
        const m = ev.data;
        if ("type" in m) { clearTimeout(timer); resolve(worker); return; }
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if ("error" in m) p.reject(new Error(m.error));
        else p.resolve(toArray(m.ids));
      };
      worker.onerror = (ev: ErrorEvent) => {
        clearTimeout(timer);
        const e = new Error(`the tokenizer worker crashed: ${ev.message}`);
        reject(e);
        if (this.worker === started) this.worker = null;
        this.failAll(e);
      };
    });
    started.catch(() => { if (this.worker === started) this.worker = null; });
    return started;
  }
}

/** The ids as a plain array (a preallocated copy: Array.from takes 4-10x longer on millions). */
function toArray(ids: Int32Array): number[] {
  const out = new Array<number>(ids.length);
  for (let i = 0; i < ids.length; i++) out[i] = ids[i];
  return out;
}
