// Checks output constraints (does this schema compile?) off the calling thread and within a
// time limit. The HTTP thread asks before anything is stored; xgrammar runs in a worker
// (check-worker.ts), one check at a time. A check that outlives the limit is a
// GrammarCompileError for its schema, and the worker, stuck in WASM, is terminated and replaced
// for the checks queued behind it.

import { GrammarCompileError, type OutputConstraint } from "./constraint.ts";

export interface CheckRequest {
  id: number;
  constraint: OutputConstraint;
}

export type CheckReply = { type: "ready" } | { type: "checked"; id: number; error: string | null };

/** How long one schema may take to compile before it is refused; real schemas take milliseconds. */
export const CHECK_TIMEOUT_MS = 3000;
const START_TIMEOUT_MS = 60_000;

export class GrammarChecker {
  private worker: Promise<Worker> | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 0;

  constructor(private readonly timeoutMs = CHECK_TIMEOUT_MS) {}

  /** Resolves when the constraint compiles; rejects with a GrammarCompileError when it does not, or not in time. */
  check(constraint: OutputConstraint): Promise<void> {
    const run = this.queue.then(() => this.run(constraint));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Stops the worker (a later check starts a new one). */
  close(): void {
    void this.worker?.then((w) => w.terminate(), () => undefined);
    this.worker = null;
  }

  private async run(constraint: OutputConstraint): Promise<void> {
    const worker = await (this.worker ??= this.spawn());
    const id = this.nextId++;
    const error = await new Promise<string | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.close();
        resolve(`it did not compile within ${this.timeoutMs} ms`);
      }, this.timeoutMs);
      worker.onmessage = (ev: MessageEvent<CheckReply>) => {
        if (ev.data.type !== "checked" || ev.data.id !== id) return;
        clearTimeout(timer);
        resolve(ev.data.error);
      };
      worker.onerror = (ev: ErrorEvent) => {
        clearTimeout(timer);
        this.close();
        reject(new Error(`the grammar check worker crashed: ${ev.message}`));
      };
      worker.postMessage({ id, constraint } satisfies CheckRequest);
    });
    if (error !== null) throw new GrammarCompileError(error);
  }

  private spawn(): Promise<Worker> {
    const worker = new Worker(new URL("./check-worker.ts", import.meta.url).href, { type: "module" });
    // An idle checker must not keep the process alive.
    (worker as Worker & { unref?(): void }).unref?.();
    const started = new Promise<Worker>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the grammar check worker did not start within 60 s")), START_TIMEOUT_MS);
      worker.onmessage = (ev: MessageEvent<CheckReply>) => {
        if (ev.data.type !== "ready") return;
        clearTimeout(timer);
        resolve(worker);
      };
      worker.onerror = (ev: ErrorEvent) => {
        clearTimeout(timer);
        reject(new Error(`the grammar check worker failed to start: ${ev.message}`));
      };
    });
    // a worker that failed to start is not kept: the next check tries a new one
    started.catch(() => { if (this.worker === started) this.worker = null; });
    return started;
  }
}
