// Work nobody waits on over HTTP: background responses, and records a previous server process
// accepted but never finished. Each runs through the same Scheduler as sync requests, with an
// abort handle kept here so `POST /v1/responses/{id}/cancel` can stop it.

import type { Scheduler, PreparedGeneration } from "./queue.ts";
import { PromptError, type ModelRegistry } from "./models.ts";
import { isTerminal, type ResponseRecord, type ResponseStore } from "../store/responses.ts";

/** How long a cancel waits for a running generation to stop before answering with its state. */
const CANCEL_WAIT_MS = 10_000;

export class BackgroundRunner {
  private readonly handles = new Map<string, AbortController>();

  constructor(
    private readonly scheduler: Scheduler,
    private readonly store: ResponseStore,
    private readonly models: ModelRegistry,
  ) {}

  /** Queues the job; the record tells how it went. The promise settles (never rejects) once it has run. */
  submit(job: PreparedGeneration): Promise<void> {
    const handle = new AbortController();
    this.handles.set(job.recordId, handle);
    return this.scheduler.run(job, { signal: handle.signal, background: true })
      .then(() => undefined)
      // Failures are already on the record (failed, or back to queued at shutdown).
      .catch(() => undefined)
      .finally(() => this.handles.delete(job.recordId));
  }

  /** Jobs submitted here and not finished yet. */
  get pending(): number {
    return this.handles.size;
  }

  /**
   * Cancels a queued or running record: a queued one becomes `cancelled` at once, a running one
   * stops at the engine's next decode step and keeps the output it had. Resolves with the record.
   */
  async cancel(rec: ResponseRecord): Promise<ResponseRecord> {
    if (isTerminal(rec.status)) return rec;
    if (rec.status === "queued") this.store.cancelQueued(rec.id);
    this.handles.get(rec.id)?.abort();
    try {
      return await this.store.settled(rec.id, AbortSignal.timeout(CANCEL_WAIT_MS));
    } catch {
      return this.store.get(rec.id) ?? rec;
    }
  }

  /**
   * Runs again every record a previous process left queued or in_progress (crash or shutdown),
   * oldest first: an accepted request is never lost. Records for a model this server no longer
   * serves, or whose prompt no longer fits, fail with a message saying why.
   */
  async recover(): Promise<{ resumed: number; failed: number }> {
    let resumed = 0;
    let failed = 0;
    for (const rec of this.store.unfinished()) {
      if (rec.status === "in_progress") this.store.requeue(rec.id);
      const model = this.models.get(rec.model);
      if (!model) {
        this.store.fail(rec.id, { code: "model_unavailable", message: `The model '${rec.model}' is no longer served; the request could not be resumed.` });
        failed++;
        continue;
      }
      let prepared: { promptIds: number[]; maxTokens: number };
      try {
        prepared = await this.models.prepare(model, rec.generation);
      } catch (err) {
        if (!(err instanceof PromptError)) throw err;
        this.store.fail(rec.id, { code: "invalid_prompt", message: err.message });
        failed++;
        continue;
      }
      this.submit({ recordId: rec.id, generation: rec.generation, tokenizer: model.tokenizer, ...prepared });
      resumed++;
    }
    return { resumed, failed };
  }
}
