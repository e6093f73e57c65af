// Completion-webhook deliveries: the durable half of src/webhooks/. A row is written when its
// record becomes terminal (in that same transaction), claimed by moving `next_attempt_at` past
// the attempt's timeout (a lease: a crash mid-attempt only delays the retry), and closed as
// delivered or failed. Plain conditional UPDATEs, as portable as the responses table.

import { and, asc, eq, lte, min } from "drizzle-orm";
import type { Db, Executor } from "./db.ts";
import { webhookDeliveries } from "./schema.ts";
import { randomToken } from "./ids.ts";

export type Delivery = typeof webhookDeliveries.$inferSelect;

export class DeliveryStore {
  constructor(private readonly db: Db) {}

  enqueue(tx: Executor, d: { responseId: string; url: string; token: string | null }): void {
    const now = Date.now();
    tx.insert(webhookDeliveries).values({
      id: `whd_${randomToken()}`, responseId: d.responseId, url: d.url, token: d.token,
      status: "pending", attempts: 0, nextAttemptAt: now, createdAt: now,
    }).run();
  }

  /** Pending deliveries whose next attempt is due. */
  due(now: number, limit = 32): Delivery[] {
    return this.db.select().from(webhookDeliveries)
      .where(and(eq(webhookDeliveries.status, "pending"), lte(webhookDeliveries.nextAttemptAt, now)))
      .orderBy(asc(webhookDeliveries.nextAttemptAt)).limit(limit).all();
  }

  /** When the earliest pending delivery is due (null: none pending). */
  nextDueAt(): number | null {
    const row = this.db.select({ at: min(webhookDeliveries.nextAttemptAt) }).from(webhookDeliveries)
      .where(eq(webhookDeliveries.status, "pending")).get();
    return row?.at ?? null;
  }

  /** Takes a due delivery for one attempt, until `leaseUntil`; false when someone else took it. */
  claim(d: Delivery, leaseUntil: number): boolean {
    return this.db.update(webhookDeliveries).set({ nextAttemptAt: leaseUntil })
      .where(and(eq(webhookDeliveries.id, d.id), eq(webhookDeliveries.status, "pending"), eq(webhookDeliveries.nextAttemptAt, d.nextAttemptAt)))
      .returning({ id: webhookDeliveries.id }).all().length > 0;
  }

  /** The attempt could not be made (the server is stopping): due again at once, not counted. */
  release(id: string): void {
    this.db.update(webhookDeliveries).set({ nextAttemptAt: Date.now() })
      .where(and(eq(webhookDeliveries.id, id), eq(webhookDeliveries.status, "pending"))).run();
  }

  delivered(id: string, attempts: number, httpStatus: number): void {
    this.db.update(webhookDeliveries).set({ status: "delivered", attempts, lastStatus: httpStatus, lastError: null, completedAt: Date.now() })
      .where(eq(webhookDeliveries.id, id)).run();
  }

  /** A failed attempt: retried at `retryAt`, or given up for good when it is null. */
  attemptFailed(id: string, attempts: number, httpStatus: number | null, error: string, retryAt: number | null): void {
    this.db.update(webhookDeliveries).set({
      attempts, lastStatus: httpStatus, lastError: error,
      ...(retryAt === null ? { status: "failed" as const, completedAt: Date.now() } : { nextAttemptAt: retryAt }),
    }).where(eq(webhookDeliveries.id, id)).run();
  }

  forResponse(responseId: string): Delivery[] {
    return this.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.responseId, responseId))
      .orderBy(asc(webhookDeliveries.createdAt)).all();
  }
}
