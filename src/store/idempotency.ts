// Idempotency reservations (API.md, shared rules): a key is scoped to (organization, API key,
// idempotency key) and remembers the SHA-256 fingerprint of the body and the record it created.
// The reservation and the record are written in one transaction, so a request either reserved
// the key and was accepted, or did neither (a 4xx before this point leaves the key free).

import { createHash } from "node:crypto";
import { and, eq, lte } from "drizzle-orm";
import type { Db, Executor } from "./db.ts";
import { idempotencyKeys } from "./schema.ts";
import type { Principal } from "./keys.ts";
import type { Surface } from "../api/unsupported.ts";

/** The routes that take an Idempotency-Key: the inference surfaces and /v1/batches. */
export type IdempotentRoute = Surface | "batches";

/** Reservations last this long unless configured otherwise (API.md: 24 h). */
export const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export interface IdempotencyRequest {
  principal: Principal;
  key: string;
  surface: IdempotentRoute;
  /** `fingerprint(body)` */
  fingerprint: string;
}

/** The key is held by a request with another body (or on another surface). */
export class IdempotencyMismatch extends Error {
  override name = "IdempotencyMismatch";
}

/** JSON with object keys sorted, so key order and whitespace do not make two bodies differ. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** SHA-256 (hex) of the body's canonical JSON. */
export function fingerprint(body: unknown): string {
  return createHash("sha256").update(canonicalJson(body)).digest("hex");
}

/** Another process inserted the same reservation between our read and our insert. */
class LostRace extends Error {}

/** What a key reserves: a response record, or a batch. */
type Reserved = { id: string };

export type Reservation<T extends Reserved> =
  | { kind: "created"; record: T }
  | { kind: "replay"; record: T };

export class IdempotencyStore {
  constructor(private readonly db: Db, private readonly ttlMs: number = DEFAULT_IDEMPOTENCY_TTL_MS) {}

  /**
   * Either creates the record (through `create`, inside the transaction) and reserves the key
   * for it, or returns the record the key already holds. Throws IdempotencyMismatch when the key
   * holds a different body.
   */
  reserve<T extends Reserved>(req: IdempotencyRequest, create: (tx: Executor) => T, load: (id: string, tx: Executor) => T | null): Reservation<T> {
    // One retry covers a twin in another process winning the insert; in this process bun:sqlite
    // runs each transaction to the end before the next starts.
    for (let attempt = 0; ; attempt++) {
      try {
        return this.db.transaction((tx) => this.reserveIn(tx, req, create, load), { behavior: "immediate" });
      } catch (err) {
        if (err instanceof LostRace && attempt === 0) continue;
        throw err;
      }
    }
  }

  private reserveIn<T extends Reserved>(
    tx: Executor, req: IdempotencyRequest, create: (tx: Executor) => T, load: (id: string, tx: Executor) => T | null,
  ): Reservation<T> {
    const now = Date.now();
    const scope = this.scope(req);
    tx.delete(idempotencyKeys).where(and(scope, lte(idempotencyKeys.expiresAt, now))).run();
    const held = tx.select().from(idempotencyKeys).where(scope).get();
    if (held) {
      if (held.fingerprint !== req.fingerprint || held.surface !== req.surface) {
        throw new IdempotencyMismatch(
          `The Idempotency-Key '${req.key}' was already used with a different request body; use a new key for a different request.`,
        );
      }
      const record = load(held.responseId, tx);
      if (record) return { kind: "replay", record };
      // The record it pointed at is gone: the reservation is stale, reserve afresh.
      tx.delete(idempotencyKeys).where(scope).run();
    }
    const record = create(tx);
    const inserted = tx.insert(idempotencyKeys).values({
      organizationId: req.principal.organizationId, apiKeyId: req.principal.apiKeyId ?? "", key: req.key,
      fingerprint: req.fingerprint, surface: req.surface, responseId: record.id, createdAt: now, expiresAt: now + this.ttlMs,
    }).onConflictDoNothing().returning({ key: idempotencyKeys.key }).all();
    if (inserted.length === 0) throw new LostRace();
    return { kind: "created", record };
  }

  /** Drops expired reservations; returns how many. */
  sweep(now = Date.now()): number {
    return this.db.delete(idempotencyKeys).where(lte(idempotencyKeys.expiresAt, now)).returning({ key: idempotencyKeys.key }).all().length;
  }

  private scope(req: IdempotencyRequest) {
    return and(
      eq(idempotencyKeys.organizationId, req.principal.organizationId),
      eq(idempotencyKeys.apiKeyId, req.principal.apiKeyId ?? ""),
      eq(idempotencyKeys.key, req.key),
    );
  }
}
