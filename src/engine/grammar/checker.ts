// Checks output constraints (does this schema compile?) off the calling thread and within a
// time limit. The HTTP thread asks before anything is stored; xgrammar runs in a worker
// (check-worker.ts), one check at a time. A check that outlives the limit is a
// GrammarCompileError for its schema, and the worker, stuck in WASM, is terminated and replaced
// for the checks queued behind it.
//
// Given the model's vocabulary, the check is the compile the engine will do (xgrammar's token
// masks for every grammar state), so a schema the engine receives is one that compiled within
// the limit against that vocabulary: a schema can check in milliseconds without a vocabulary and
// take seconds with one (a long repeated regex pattern: 3 ms against 1.8 s on stories15M), and
// the engine worker's compile cannot be interrupted.

import { GrammarCompileError, type OutputConstraint } from "./constraint.ts";

/** The model whose vocabulary a constraint is compiled against: its file and its logit count. */
export interface CheckVocab {
  ref: string;
  nVocab: number;
}

export type CheckRequest =
  | { type: "check"; id: number; constraint: OutputConstraint; vocab?: CheckVocab }
  /** Prepares a vocabulary (~0.1-0.5 s for 32k tokens), outside a check's time limit. */
  | { type: "vocab"; id: number; vocab: CheckVocab };

export type CheckReply = { type: "ready" } | { type: "checked"; id: number; error: string | null };

/** How long one schema may take to compile before it is refused; real schemas take milliseconds. */
export const CHECK_TIMEOUT_MS = 3000;
const START_TIMEOUT_MS = 60_000;

/** One key per (file, logit count): the checker worker prepares each vocabulary once. */
export const vocabKey = (v: CheckVocab) => `${v.nVocab}:${v.ref}`;

interface CheckWorker {
  worker: Worker;
  /** Vocabularies this worker has prepared. */
  vocabs: Set<string>;
}

export class GrammarChecker {
  private worker: Promise<CheckWorker> | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 0;

  constructor(private readonly timeoutMs = CHECK_TIMEOUT_MS) {}

  /**
   * Resolves when the constraint compiles (against `vocab`'s tokens when given); rejects with a
   * GrammarCompileError when it does not, or not in time.
   */
  check(constraint: OutputConstraint, vocab?: CheckVocab): Promise<void> {
    const run = this.queue.then(() => this.run(constraint, vocab));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Stops the worker (a later check starts a new one). */
  close(): void {
    void this.worker?.then((w) => w.worker.terminate(), () => undefined);
    this.worker = null;
  }

  private async run(constraint: OutputConstraint, vocab?: CheckVocab): Promise<void> {
    const w = await (this.worker ??= this.spawn());
    if (vocab && !w.vocabs.has(vocabKey(vocab))) {
      const error = await this.ask(w.worker, { type: "vocab", id: this.nextId++, vocab }, START_TIMEOUT_MS, "the vocabulary was not ready");
      if (error !== null) throw new Error(`the grammar checker could not read the model's vocabulary: ${error}`);
      w.vocabs.add(vocabKey(vocab));
    }
    const error = await this.ask(w.worker, { type: "check", id: this.nextId++, constraint, ...(vocab ? { vocab } : {}) }, this.timeoutMs, "it did not compile");
    if (error !== null) throw new GrammarCompileError(error);
  }

  /** Sends one request and waits for its reply; past `limitMs` the worker is replaced and the reply is `late`. */
  private ask(worker: Worker, req: CheckRequest, limitMs: number, late: string): Promise<string | null> {
    return new Promise<string | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.close();
        resolve(`${late} within ${limitMs} ms`);
      }, limitMs);
      worker.onmessage = (ev: MessageEvent<CheckReply>) => {
        if (ev.data.type !== "checked" || ev.data.id !== req.id) return;
        clearTimeout(timer);
        resolve(ev.data.error);
      };
      worker.onerror = (ev: ErrorEvent) => {
        clearTimeout(timer);
        this.close();
        reject(new Error(`the grammar check worker crashed: ${ev.message}`));
      };
      worker.postMessage(req);
    });
  }

  private spawn(): Promise<CheckWorker> {
    const worker = new Worker(new URL("./check-worker.ts", import.meta.url).href, { type: "module" });
    // An idle checker must not keep the process alive.
    (worker as Worker & { unref?(): void }).unref?.();
    const started = new Promise<CheckWorker>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the grammar check worker did not start within 60 s")), START_TIMEOUT_MS);
      worker.onmessage = (ev: MessageEvent<CheckReply>) => {
        if (ev.data.type !== "ready") return;
        clearTimeout(timer);
        resolve({ worker, vocabs: new Set() });
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
