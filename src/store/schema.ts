// The durable store's tables (drizzle-orm, SQLite dialect). Kept to portable column types
// (text, integer, JSON as text) so the same schema maps onto PostgreSQL. Times are Unix
// milliseconds. Migrations are generated from this file with drizzle-kit into ./migrations.

import { sqliteTable, text, integer, index, uniqueIndex, primaryKey } from "drizzle-orm/sqlite-core";

export const organizations = sqliteTable("organizations", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  createdAt: integer("created_at").notNull(),
}, (t) => [uniqueIndex("organizations_name_idx").on(t.name)]);

export const apiKeys = sqliteTable("api_keys", {
  id: text("id").primaryKey(),
  organizationId: text("organization_id").notNull().references(() => organizations.id),
  /** SHA-256 of the key, hex: the key itself is shown once and never stored. */
  hash: text("hash").notNull(),
  /** The first characters of the key, to recognise it in `keys list`. */
  prefix: text("prefix").notNull(),
  name: text("name"),
  createdAt: integer("created_at").notNull(),
  revokedAt: integer("revoked_at"),
}, (t) => [uniqueIndex("api_keys_hash_idx").on(t.hash), index("api_keys_org_idx").on(t.organizationId)]);

/**
 * One row per inference request, whatever the surface. `generation` is the neutral request
 * (enough to run it again after a restart); `request` is the body as received (for idempotency
 * fingerprints and the surface's own echo fields).
 */
export const responses = sqliteTable("responses", {
  id: text("id").primaryKey(),
  surface: text("surface", { enum: ["responses", "chat", "messages"] }).notNull(),
  organizationId: text("organization_id").notNull(),
  apiKeyId: text("api_key_id"),
  model: text("model").notNull(),
  status: text("status", { enum: ["queued", "in_progress", "completed", "incomplete", "failed", "cancelled"] }).notNull(),
  background: integer("background", { mode: "boolean" }).notNull().default(false),
  /** The completion window it runs in ("asap" first, then "standard"). */
  window: text("window", { enum: ["asap", "standard"] }).notNull().default("standard"),
  request: text("request", { mode: "json" }).notNull(),
  generation: text("generation", { mode: "json" }).notNull(),
  /** GenerationResult's text and tokens once finished. */
  output: text("output", { mode: "json" }),
  /** { inputTokens, cachedTokens, outputTokens } */
  usage: text("usage", { mode: "json" }),
  /** { code, message } when failed. */
  error: text("error", { mode: "json" }),
  incompleteReason: text("incomplete_reason"),
  createdAt: integer("created_at").notNull(),
  startedAt: integer("started_at"),
  completedAt: integer("completed_at"),
  /** Set on a batch's items: the batch, the item's `custom_id` and its place in the batch. */
  batchId: text("batch_id"),
  customId: text("custom_id"),
  batchIndex: integer("batch_index"),
}, (t) => [
  index("responses_status_idx").on(t.status, t.createdAt),
  index("responses_org_created_idx").on(t.organizationId, t.createdAt),
  uniqueIndex("responses_batch_custom_idx").on(t.batchId, t.customId),
  index("responses_batch_index_idx").on(t.batchId, t.batchIndex),
  index("responses_batch_status_idx").on(t.batchId, t.status),
]);

/**
 * A batch of Responses requests (POST /v1/batches). Its items are rows of `responses` with
 * `batch_id` set, written in the same transaction; the batch's state is their counts, plus when
 * a cancel was asked and when the last item finished (set once, in that item's transaction).
 */
export const batches = sqliteTable("batches", {
  id: text("id").primaryKey(),
  organizationId: text("organization_id").notNull(),
  apiKeyId: text("api_key_id"),
  endpoint: text("endpoint").notNull(),
  label: text("label"),
  /** The batch's own metadata: completion_webhook / webhook_token for its completion. */
  metadata: text("metadata", { mode: "json" }).$type<Record<string, string>>().notNull(),
  requestCount: integer("request_count").notNull(),
  createdAt: integer("created_at").notNull(),
  cancelledAt: integer("cancelled_at"),
  completedAt: integer("completed_at"),
}, (t) => [
  index("batches_org_created_idx").on(t.organizationId, t.createdAt),
  index("batches_open_idx").on(t.completedAt),
]);

/**
 * Idempotency reservations, one per (organization, API key, idempotency key). `apiKeyId` is ""
 * for the VALAR_API_KEY key and unauthenticated use: NULLs never collide in a unique index (in
 * SQLite or PostgreSQL), so the scope needs a real value. Written in the same transaction as the
 * record it points at; a concurrent twin loses the insert (ON CONFLICT DO NOTHING) and replays.
 */
export const idempotencyKeys = sqliteTable("idempotency_keys", {
  organizationId: text("organization_id").notNull(),
  apiKeyId: text("api_key_id").notNull(),
  key: text("key").notNull(),
  /** SHA-256 (hex) of the request body's canonical JSON. */
  fingerprint: text("fingerprint").notNull(),
  surface: text("surface", { enum: ["responses", "chat", "messages", "batches"] }).notNull(),
  /** The record it created: a response id, or a batch id on /v1/batches. */
  responseId: text("response_id").notNull(),
  createdAt: integer("created_at").notNull(),
  expiresAt: integer("expires_at").notNull(),
}, (t) => [
  primaryKey({ columns: [t.organizationId, t.apiKeyId, t.key] }),
  index("idempotency_keys_expires_idx").on(t.expiresAt),
]);

/**
 * Completion-webhook deliveries: one row per record that reached a terminal state with a usable
 * `metadata.completion_webhook`, created in the same transaction as that state. A worker claims
 * due rows by moving `next_attempt_at` forward (a lease), so a crash mid-attempt only delays it.
 */
export const webhookDeliveries = sqliteTable("webhook_deliveries", {
  id: text("id").primaryKey(),
  responseId: text("response_id").notNull(),
  url: text("url").notNull(),
  /** Sent as `Authorization: Bearer <token>` when set. */
  token: text("token"),
  status: text("status", { enum: ["pending", "delivered", "failed"] }).notNull(),
  attempts: integer("attempts").notNull().default(0),
  nextAttemptAt: integer("next_attempt_at").notNull(),
  /** HTTP status of the last attempt (null: no answer). */
  lastStatus: integer("last_status"),
  lastError: text("last_error"),
  createdAt: integer("created_at").notNull(),
  completedAt: integer("completed_at"),
}, (t) => [
  index("webhook_deliveries_due_idx").on(t.status, t.nextAttemptAt),
  index("webhook_deliveries_response_idx").on(t.responseId),
]);
