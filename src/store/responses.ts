// Records of inference requests: created when a request is accepted, moved through
// queued -> in_progress -> completed | incomplete | failed | cancelled as it runs.
//
// Every transition is a conditional UPDATE on the current status (`WHERE status = 'queued'`,
// `WHERE status IN ('queued', 'in_progress')`), so two actors racing on one record (the scheduler
// starting it, a cancel, another server node) cannot both win, and a terminal record never
// changes again. The same statements work on PostgreSQL.

import { and, asc, eq, inArray, isNull, sql } from "drizzle-orm";
import type { Db, Executor } from "./db.ts";
import { responses } from "./schema.ts";
import type { Generation, GenerationResult, GenerationStatus, GenerationUsage, OutputToken } from "../generation.ts";
import type { Surface } from "../api/unsupported.ts";
import type { Principal } from "./keys.ts";

export interface StoredOutput {
  text: string;
  tokens: OutputToken[];
  finishReason: GenerationResult["finishReason"];
}

export interface ResponseRecord {
  id: string;
  surface: Surface;
  organizationId: string;
  apiKeyId: string | null;
  model: string;
  status: GenerationStatus;
  background: boolean;
  window: Generation["window"];
  request: unknown;
  generation: Generation;
  output: StoredOutput | null;
  usage: GenerationUsage | null;
  error: { code: string; message: string } | null;
  incompleteReason: string | null;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
  /** A batch item's batch, custom_id and place in the batch (null on other records). */
  batchId: string | null;
  customId: string | null;
  batchIndex: number | null;
}

export interface NewRecord {
  id: string;
  surface: Surface;
  principal: Principal;
  request: unknown;
  generation: Generation;
  background?: boolean;
}

export const TERMINAL_STATUSES = ["completed", "incomplete", "failed", "cancelled"] as const;
const UNFINISHED: GenerationStatus[] = ["queued", "in_progress"];

export function isTerminal(status: GenerationStatus): boolean {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

/** What reacts to a record reaching a terminal state (webhook deliveries, waiting twins). */
export interface TerminalHooks {
  /** Runs inside the transaction that made the record terminal: its writes commit with it. */
  inTransaction?(tx: Executor, rec: ResponseRecord): void;
  /** Runs after the commit. */
  afterCommit?(rec: ResponseRecord): void;
}

type TerminalUpdate = Partial<typeof responses.$inferInsert> & { status: (typeof TERMINAL_STATUSES)[number] };

/** How often a wait for a record polls the store, in case another process finishes it. */
const SETTLE_POLL_MS = 1000;

export class ResponseStore {
  private readonly hooks: TerminalHooks[] = [];
  private readonly waiters = new Map<string, Set<(rec: ResponseRecord) => void>>();
  /** Creation times are strictly increasing, so "oldest first" (recovery order) has no ties. */
  private lastCreatedAt = 0;

  constructor(private readonly db: Db) {}

  /** Adds reactions to terminal transitions (the server wires webhooks here). */
  addHooks(hooks: TerminalHooks): void {
    this.hooks.push(hooks);
  }

  /** Inserts the record (status queued). `tx` lets a caller insert it with other rows atomically. */
  create(rec: NewRecord, tx: Executor = this.db): ResponseRecord {
    this.lastCreatedAt = Math.max(Date.now(), this.lastCreatedAt + 1);
    const row = {
      id: rec.id, surface: rec.surface, organizationId: rec.principal.organizationId,
      apiKeyId: rec.principal.apiKeyId, model: rec.generation.model, status: "queued" as const,
      background: rec.background ?? false, window: rec.generation.window, request: rec.request,
      generation: rec.generation, createdAt: this.lastCreatedAt,
    };
    tx.insert(responses).values(row).run();
    return this.get(rec.id, undefined, tx)!;
  }

  /** The record, or null when unknown; with `organizationId`, also null when another organization owns it. */
  get(id: string, organizationId?: string, tx: Executor = this.db): ResponseRecord | null {
    const where = organizationId === undefined
      ? eq(responses.id, id)
      : and(eq(responses.id, id), eq(responses.organizationId, organizationId));
    const row = tx.select().from(responses).where(where).get();
    return row ? (row as ResponseRecord) : null;
  }

  /**
   * Claims a queued record for running: true when this caller moved it to in_progress, false
   * when it was no longer queued (cancelled meanwhile, or claimed by someone else).
   */
  claim(id: string): boolean {
    const rows = this.db.update(responses).set({ status: "in_progress", startedAt: Date.now() })
      .where(and(eq(responses.id, id), eq(responses.status, "queued"))).returning({ id: responses.id }).all();
    return rows.length > 0;
  }

  /** Same as `claim`, for callers that do not need to know. */
  markStarted(id: string): void {
    this.claim(id);
  }

  /** Puts an interrupted record back in the queue (the server stopped or crashed while it ran). */
  requeue(id: string): void {
    this.db.update(responses).set({ status: "queued", startedAt: null })
      .where(and(eq(responses.id, id), eq(responses.status, "in_progress"))).run();
  }

  /**
   * Records left queued or running, oldest first: the work a (re)started server picks up.
   * Batch items are not among them: the batch runner feeds those a few at a time.
   */
  unfinished(): ResponseRecord[] {
    return this.db.select().from(responses).where(and(inArray(responses.status, UNFINISHED), isNull(responses.batchId)))
      .orderBy(asc(responses.createdAt)).all() as ResponseRecord[];
  }

  finish(id: string, result: GenerationResult): ResponseRecord {
    const output: StoredOutput = { text: result.text, tokens: result.tokens, finishReason: result.finishReason };
    return this.terminate(id, UNFINISHED, {
      status: result.status, output, usage: result.usage,
      incompleteReason: result.status === "incomplete" ? "max_output_tokens" : null,
    });
  }

  fail(id: string, error: { code: string; message: string }): ResponseRecord | null {
    return this.terminate(id, UNFINISHED, { status: "failed", error });
  }

  /** Cancels a record that has not started; returns whether it was still queued. */
  cancelQueued(id: string): boolean {
    let won = false;
    this.terminate(id, ["queued"], { status: "cancelled", usage: null }, () => (won = true));
    return won;
  }

  /**
   * Cancels every queued item of a batch at once, with `alongside` in the same transaction. The
   * terminal hooks run for the items that react to it (those with a completion webhook); a
   * hundred thousand others are one UPDATE, not a hundred thousand transactions.
   */
  cancelQueuedOfBatch(batchId: string, alongside: (tx: Executor) => void): number {
    const { reacting, cancelled } = this.db.transaction((tx) => {
      const rows = tx.update(responses).set({ status: "cancelled", completedAt: Date.now(), usage: null })
        .where(and(eq(responses.batchId, batchId), eq(responses.status, "queued")))
        .returning({ id: responses.id, hooked: sql<number>`json_extract(${responses.generation}, '$.metadata.completion_webhook') IS NOT NULL` }).all();
      const reacting = rows.filter((r) => r.hooked).map((r) => this.get(r.id, undefined, tx)!);
      for (const rec of reacting) for (const h of this.hooks) h.inTransaction?.(tx, rec);
      alongside(tx);
      return { reacting, cancelled: rows.length };
    }, { behavior: "immediate" });
    for (const rec of reacting) {
      for (const h of this.hooks) h.afterCommit?.(rec);
      for (const wake of [...(this.waiters.get(rec.id) ?? [])]) wake(rec);
    }
    return cancelled;
  }

  /**
   * Resolves with the record once it is terminal (at once if it already is). Rejects with the
   * signal's reason when `signal` aborts first.
   */
  settled(id: string, signal?: AbortSignal): Promise<ResponseRecord> {
    return new Promise((resolve, reject) => {
      const now = this.get(id);
      if (!now || isTerminal(now.status)) return resolve(now!);
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      const done = (rec: ResponseRecord) => {
        clearInterval(poll);
        signal?.removeEventListener("abort", abort);
        set!.delete(done);
        if (set!.size === 0) this.waiters.delete(id);
        resolve(rec);
      };
      const abort = () => {
        clearInterval(poll);
        set!.delete(done);
        if (set!.size === 0) this.waiters.delete(id);
        reject(signal!.reason);
      };
      set.add(done);
      signal?.addEventListener("abort", abort, { once: true });
      const poll = setInterval(() => {
        const rec = this.get(id);
        if (rec && isTerminal(rec.status)) done(rec);
      }, SETTLE_POLL_MS);
    });
  }

  /**
   * The one way a record becomes terminal: a conditional update from one of `from`, the hooks'
   * writes in the same transaction, then the after-commit reactions. A record already terminal
   * is left as it is and returned unchanged.
   */
  private terminate(id: string, from: GenerationStatus[], set: TerminalUpdate, onWon?: () => void): ResponseRecord {
    const rec = this.db.transaction((tx) => {
      const changed = tx.update(responses).set({ ...set, completedAt: Date.now() })
        .where(and(eq(responses.id, id), inArray(responses.status, from))).returning({ id: responses.id }).all();
      const now = this.get(id, undefined, tx)!;
      if (changed.length === 0) return { rec: now, changed: false };
      for (const h of this.hooks) h.inTransaction?.(tx, now);
      return { rec: now, changed: true };
    });
    if (rec.changed) {
      onWon?.();
      for (const h of this.hooks) h.afterCommit?.(rec.rec);
      for (const wake of [...(this.waiters.get(id) ?? [])]) wake(rec.rec);
    }
    return rec.rec;
  }
}
