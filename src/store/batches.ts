// Batches (POST /v1/batches): a row in `batches` and one `responses` row per item, all written
// in one transaction, so a batch is either wholly accepted or not at all. An item is an ordinary
// record (status queued -> ... -> terminal, readable with GET /v1/responses/{id}); the batch's
// state is its items' counts, plus two times written once: `cancelled_at` when a cancel was
// asked, `completed_at` in the transaction that made its last item terminal.

import { and, asc, count, desc, eq, gt, inArray, isNull, sql } from "drizzle-orm";
import type { Db, Executor } from "./db.ts";
import { batches, responses } from "./schema.ts";
import type { Principal } from "./keys.ts";
import type { Generation, GenerationStatus } from "../generation.ts";
import type { ResponseRecord, ResponseStore } from "./responses.ts";

export type BatchRow = typeof batches.$inferSelect;

/** Where a batch stands, from its items' counts and its two times. */
export type BatchStatus = "queued" | "in_progress" | "cancelling" | "completed" | "cancelled";

export type StatusCounts = Record<GenerationStatus, number>;

export interface NewBatchItem {
  id: string;
  customId: string;
  /** The item's `params` as sent (the Response's echo fields come from it). */
  request: unknown;
  generation: Generation;
}

export interface NewBatch {
  id: string;
  principal: Principal;
  endpoint: string;
  label: string | null;
  metadata: Record<string, string>;
  items: NewBatchItem[];
}

/** One queued item to run next. */
export interface QueuedItem {
  id: string;
  batchIndex: number;
  model: string;
  generation: Generation;
}

/** A finished item for the results stream. */
export type FinishedItem = ResponseRecord & { customId: string; batchIndex: number };

/** What reacts to a batch's completion (the webhook wiring): inside its transaction, and after. */
export interface BatchHooks {
  inTransaction?(tx: Executor, batch: BatchRow): void;
  afterCommit?(batch: BatchRow): void;
}

const UNFINISHED: GenerationStatus[] = ["queued", "in_progress"];
const STATUSES: GenerationStatus[] = ["queued", "in_progress", "completed", "incomplete", "failed", "cancelled"];

export function batchStatus(batch: BatchRow, counts: StatusCounts): BatchStatus {
  if (batch.completedAt !== null) return batch.cancelledAt !== null ? "cancelled" : "completed";
  if (batch.cancelledAt !== null) return "cancelling";
  return counts.queued === batch.requestCount ? "queued" : "in_progress";
}

export class BatchStore {
  private readonly hooks: BatchHooks[] = [];

  constructor(private readonly db: Db, private readonly records: ResponseStore) {
    // The last item to finish closes its batch in its own transaction.
    records.addHooks({ inTransaction: (tx, rec) => this.itemFinished(tx, rec) });
  }

  addHooks(hooks: BatchHooks): void {
    this.hooks.push(hooks);
  }

  /** Inserts the batch and all its items (status queued); `tx` lets a caller add an idempotency reservation to the transaction. */
  create(b: NewBatch, tx?: Executor): BatchRow {
    const write = (t: Executor) => {
      const now = Date.now();
      t.insert(batches).values({
        id: b.id, organizationId: b.principal.organizationId, apiKeyId: b.principal.apiKeyId, endpoint: b.endpoint,
        label: b.label, metadata: b.metadata, requestCount: b.items.length, createdAt: now,
      }).run();
      // One prepared statement run per item: building a multi-row INSERT's SQL costs more than the rows.
      const insertItem = t.insert(responses).values({
        id: sql.placeholder("id"), surface: "responses", organizationId: b.principal.organizationId, apiKeyId: b.principal.apiKeyId,
        model: sql.placeholder("model"), status: "queued", background: true, window: sql.placeholder("window"),
        request: sql.placeholder("request"), generation: sql.placeholder("generation"), createdAt: now,
        batchId: b.id, customId: sql.placeholder("customId"), batchIndex: sql.placeholder("batchIndex"),
      }).prepare();
      b.items.forEach((item, i) => insertItem.run({
        id: item.id, model: item.generation.model, window: item.generation.window, customId: item.customId, batchIndex: i,
        request: item.request, generation: item.generation,
      }));
      return t.select().from(batches).where(eq(batches.id, b.id)).get()!;
    };
    return tx ? write(tx) : this.db.transaction(write);
  }

  /** The batch, or null when unknown or (with `organizationId`) another organization's. */
  get(id: string, organizationId?: string, tx: Executor = this.db): BatchRow | null {
    const where = organizationId === undefined ? eq(batches.id, id) : and(eq(batches.id, id), eq(batches.organizationId, organizationId));
    return tx.select().from(batches).where(where).get() ?? null;
  }

  /** Newest first; `afterId` / `beforeId` page by a batch id of the same organization. */
  list(organizationId: string, opts: { afterId?: string; beforeId?: string; limit: number }): BatchRow[] {
    const conditions = [eq(batches.organizationId, organizationId)];
    const after = opts.afterId ? this.get(opts.afterId, organizationId) : null;
    const before = opts.beforeId ? this.get(opts.beforeId, organizationId) : null;
    // "after" in a newest-first list: older than it; "before": newer. Ties on the millisecond go by id.
    if (after) conditions.push(sql`(${batches.createdAt}, ${batches.id}) < (${after.createdAt}, ${after.id})`);
    if (before) conditions.push(sql`(${batches.createdAt}, ${batches.id}) > (${before.createdAt}, ${before.id})`);
    if (before && !after) {
      const rows = this.db.select().from(batches).where(and(...conditions))
        .orderBy(asc(batches.createdAt), asc(batches.id)).limit(opts.limit).all();
      return rows.reverse();
    }
    return this.db.select().from(batches).where(and(...conditions))
      .orderBy(desc(batches.createdAt), desc(batches.id)).limit(opts.limit).all();
  }

  counts(batchId: string, tx: Executor = this.db): StatusCounts {
    const out = Object.fromEntries(STATUSES.map((s) => [s, 0])) as StatusCounts;
    const rows = tx.select({ status: responses.status, n: count() }).from(responses)
      .where(eq(responses.batchId, batchId)).groupBy(responses.status).all();
    for (const r of rows) out[r.status] = r.n;
    return out;
  }

  /** Every item's custom_id, response id and status, in batch order. */
  itemStatuses(batchId: string): { customId: string; id: string; status: GenerationStatus }[] {
    return this.db.select({ customId: responses.customId, id: responses.id, status: responses.status }).from(responses)
      .where(eq(responses.batchId, batchId)).orderBy(asc(responses.batchIndex)).all() as { customId: string; id: string; status: GenerationStatus }[];
  }

  /** The item's record, or null. */
  item(batchId: string, customId: string): ResponseRecord | null {
    const row = this.db.select().from(responses).where(and(eq(responses.batchId, batchId), eq(responses.customId, customId))).get();
    return (row as ResponseRecord | undefined) ?? null;
  }

  /** Batches not completed yet, oldest first: the ones with items to run or running. */
  open(): BatchRow[] {
    return this.db.select().from(batches).where(isNull(batches.completedAt)).orderBy(asc(batches.createdAt), asc(batches.id)).all();
  }

  /** Up to `limit` queued items after position `afterIndex`, in batch order. */
  queuedAfter(batchId: string, afterIndex: number, limit: number): QueuedItem[] {
    return this.db.select({ id: responses.id, batchIndex: responses.batchIndex, model: responses.model, generation: responses.generation })
      .from(responses)
      .where(and(eq(responses.batchId, batchId), gt(responses.batchIndex, afterIndex), eq(responses.status, "queued")))
      .orderBy(asc(responses.batchIndex)).limit(limit).all() as QueuedItem[];
  }

  /** Items a stopped or crashed process left running go back to queued (they run again from the start). */
  requeueInterrupted(): number {
    return this.db.update(responses).set({ status: "queued", startedAt: null })
      .where(and(eq(responses.status, "in_progress"), sql`${responses.batchId} IS NOT NULL`))
      .returning({ id: responses.id }).all().length;
  }

  /** Up to `limit` finished items after position `afterIndex`, in batch order (the results stream's pages). */
  finishedAfter(batchId: string, afterIndex: number, limit: number): FinishedItem[] {
    return this.db.select().from(responses)
      .where(and(eq(responses.batchId, batchId), gt(responses.batchIndex, afterIndex), sql`${responses.status} NOT IN ('queued', 'in_progress')`))
      .orderBy(asc(responses.batchIndex)).limit(limit).all() as FinishedItem[];
  }

  /**
   * Asks the batch to stop: its queued items become cancelled at once (running ones finish, and
   * the last of them completes the batch). Returns the batch as it is afterwards.
   */
  cancel(batchId: string): BatchRow {
    let completed: BatchRow | null = null;
    this.records.cancelQueuedOfBatch(batchId, (tx) => {
      tx.update(batches).set({ cancelledAt: Date.now() }).where(and(eq(batches.id, batchId), isNull(batches.cancelledAt))).run();
      completed = this.closeIfDone(tx, batchId);
    });
    if (completed) for (const h of this.hooks) h.afterCommit?.(completed);
    return this.get(batchId)!;
  }

  /** Items by status over every batch, and batches by status (for metrics). */
  totals(): { items: StatusCounts; batches: Record<BatchStatus, number> } {
    const items = Object.fromEntries(STATUSES.map((s) => [s, 0])) as StatusCounts;
    for (const r of this.db.select({ status: responses.status, n: count() }).from(responses)
      .where(sql`${responses.batchId} IS NOT NULL`).groupBy(responses.status).all()) items[r.status] = r.n;
    const byStatus: Record<BatchStatus, number> = { queued: 0, in_progress: 0, cancelling: 0, completed: 0, cancelled: 0 };
    const done = this.db.select({ cancelled: sql<number>`${batches.cancelledAt} IS NOT NULL`, n: count() }).from(batches)
      .where(sql`${batches.completedAt} IS NOT NULL`).groupBy(sql`1`).all();
    for (const r of done) byStatus[r.cancelled ? "cancelled" : "completed"] += r.n;
    for (const b of this.open()) byStatus[batchStatus(b, this.counts(b.id))]++;
    return { items, batches: byStatus };
  }

  /** A terminal item: when it was its batch's last unfinished one, the batch completes now. */
  private itemFinished(tx: Executor, rec: ResponseRecord): void {
    if (!rec.batchId) return;
    const completed = this.closeIfDone(tx, rec.batchId);
    // The item's transaction commits after this hook; its own afterCommit hooks run then. The
    // batch's after-commit reactions (waking the webhook dispatcher) may run early without harm.
    if (completed) queueMicrotask(() => { for (const h of this.hooks) h.afterCommit?.(completed); });
  }

  private closeIfDone(tx: Executor, batchId: string): BatchRow | null {
    const left = tx.select({ n: count() }).from(responses)
      .where(and(eq(responses.batchId, batchId), inArray(responses.status, UNFINISHED))).get()!.n;
    if (left > 0) return null;
    const closed = tx.update(batches).set({ completedAt: Date.now() })
      .where(and(eq(batches.id, batchId), isNull(batches.completedAt))).returning().all();
    if (closed.length === 0) return null;
    for (const h of this.hooks) h.inTransaction?.(tx, closed[0]);
    return closed[0];
  }
}
