// Runs batch items. A batch of 100,000 items must not become 100,000 scheduler entries (each a
// prompt in memory, each looked at on every scheduling decision): the items stay in the store
// and this runner feeds them to the scheduler a few at a time, as `standard` background work,
// keeping about two engine-fulls per model in the scheduler so the engine never waits for the
// next item. Batches go oldest first, each in its own order; an item whose model is full stops
// its batch until there is room. What runs, what is claimed and what finishes is the
// scheduler's business, exactly as for a background response; after a restart, items left
// running are queued again and run from the start under the same record (never twice).

import type { BackgroundRunner } from "./background.ts";
import { PromptError, type ModelRegistry } from "./models.ts";
import type { ResponseStore } from "../store/responses.ts";
import type { BatchStore, QueuedItem } from "../store/batches.ts";

/** Scheduler entries per model, as a multiple of the sequences the engine runs at once. */
const ENGINE_FULLS = 2;

export class BatchRunner {
  /** Per batch, the last item position handed to the scheduler in this process. */
  private readonly cursors = new Map<string, number>();
  /** Items handed to the scheduler and not finished, per model. */
  private readonly inFlight = new Map<string, number>();
  private scheduled = false;
  private stopped = false;

  constructor(
    private readonly batches: BatchStore,
    private readonly store: ResponseStore,
    private readonly models: ModelRegistry,
    private readonly background: BackgroundRunner,
  ) {}

  /** Requeues what a previous process left running, then starts feeding. */
  start(): { requeued: number } {
    const requeued = this.batches.requeueInterrupted();
    this.wake();
    return { requeued };
  }

  /** Stops feeding (the scheduler's stop puts running items back to queued). */
  stop(): void {
    this.stopped = true;
  }

  /** Something changed (a new batch, an item finished): feed on the next tick. */
  wake(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      try {
        this.feed();
      } catch (err) {
        // The store is unreachable or the like: items stay queued, and the next wake retries.
        console.error("batch runner:", err);
      }
    });
  }

  /** Items this process has handed to the scheduler and not seen finish. */
  get running(): number {
    let n = 0;
    for (const v of this.inFlight.values()) n += v;
    return n;
  }

  private room(model: string): number {
    const served = this.models.get(model);
    const limit = ENGINE_FULLS * (served?.maxRunning ?? 1);
    return limit - (this.inFlight.get(model) ?? 0);
  }

  private feed(): void {
    if (this.stopped) return;
    const open = this.batches.open();
    const ids = new Set(open.map((b) => b.id));
    for (const id of this.cursors.keys()) if (!ids.has(id)) this.cursors.delete(id);
    for (const batch of open) {
      let cursor = this.cursors.get(batch.id) ?? -1;
      for (;;) {
        const page = this.batches.queuedAfter(batch.id, cursor, 64);
        if (page.length === 0) break;
        let blocked = false;
        for (const item of page) {
          // an unknown model is no reason to wait: the item fails at once below
          if (this.models.get(item.model) && this.room(item.model) <= 0) { blocked = true; break; }
          this.submit(item);
          cursor = item.batchIndex;
        }
        this.cursors.set(batch.id, cursor);
        if (blocked) break;
      }
    }
  }

  private submit(item: QueuedItem): void {
    const model = this.models.get(item.model);
    if (!model) {
      this.store.fail(item.id, { code: "model_unavailable", message: `The model '${item.model}' is no longer served; the batch item could not run.` });
      return;
    }
    // counted from now: the prompt may be tokenized off-thread before it is submitted
    this.inFlight.set(item.model, (this.inFlight.get(item.model) ?? 0) + 1);
    const release = () => {
      this.inFlight.set(item.model, (this.inFlight.get(item.model) ?? 1) - 1);
      this.wake();
    };
    void this.models.prepare(model, item.generation).then(
      (prepared) => this.background.submit({ recordId: item.id, generation: item.generation, tokenizer: model.tokenizer, ...prepared }).finally(release),
      (err: unknown) => {
        // Runs outside any request: whatever goes wrong is the item's failure, never the process's.
        const code = err instanceof PromptError ? "invalid_prompt" : "server_error";
        this.store.fail(item.id, { code, message: err instanceof Error ? err.message : String(err) });
        release();
      },
    );
  }
}
