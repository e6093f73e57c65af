// Organizations and their API keys. A key is shown once when created; only its SHA-256 is kept.

import { createHash } from "node:crypto";
import { and, eq, isNull } from "drizzle-orm";
import type { Db } from "./db.ts";
import { apiKeys, organizations } from "./schema.ts";
import { newId, randomToken } from "./ids.ts";

export const KEY_PREFIX = "valar-";

export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export interface Principal {
  organizationId: string;
  /** null for the key from VALAR_API_KEY and when auth is off. */
  apiKeyId: string | null;
}

/** The organization the `VALAR_API_KEY` key (and unauthenticated loopback use) belongs to. */
export const DEFAULT_ORG = { id: "org_default", name: "default" } as const;

export function ensureOrganization(db: Db, name: string): { id: string; name: string } {
  const found = db.select().from(organizations).where(eq(organizations.name, name)).get();
  if (found) return { id: found.id, name: found.name };
  const id = name === DEFAULT_ORG.name ? DEFAULT_ORG.id : newId("organization");
  db.insert(organizations).values({ id, name, createdAt: Date.now() }).onConflictDoNothing().run();
  const row = db.select().from(organizations).where(eq(organizations.name, name)).get()!;
  return { id: row.id, name: row.name };
}

export interface CreatedKey {
  id: string;
  key: string;
  organizationId: string;
  organization: string;
}

export function createKey(db: Db, orgName: string, name: string | null = null): CreatedKey {
  const org = ensureOrganization(db, orgName);
  const key = KEY_PREFIX + randomToken(32);
  const id = newId("apiKey");
  db.insert(apiKeys).values({
    id, organizationId: org.id, hash: hashKey(key), prefix: key.slice(0, KEY_PREFIX.length + 6),
    name, createdAt: Date.now(),
  }).run();
  return { id, key, organizationId: org.id, organization: org.name };
}

export interface KeyListing {
  id: string;
  prefix: string;
  name: string | null;
  organization: string;
  createdAt: number;
  revokedAt: number | null;
}

export function listKeys(db: Db): KeyListing[] {
  return db.select({
    id: apiKeys.id, prefix: apiKeys.prefix, name: apiKeys.name, organization: organizations.name,
    createdAt: apiKeys.createdAt, revokedAt: apiKeys.revokedAt,
  }).from(apiKeys).innerJoin(organizations, eq(apiKeys.organizationId, organizations.id))
    .orderBy(apiKeys.createdAt).all();
}

/** Revokes by key id (`key_…`); returns false when no active key has that id. */
export function revokeKey(db: Db, id: string): boolean {
  const revoked = db.update(apiKeys).set({ revokedAt: Date.now() })
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt))).returning({ id: apiKeys.id }).all();
  return revoked.length > 0;
}

/** The principal a presented key stands for, or null when unknown or revoked. */
export function findKey(db: Db, key: string): Principal | null {
  const row = db.select({ id: apiKeys.id, organizationId: apiKeys.organizationId })
    .from(apiKeys).where(and(eq(apiKeys.hash, hashKey(key)), isNull(apiKeys.revokedAt))).get();
  return row ? { organizationId: row.organizationId, apiKeyId: row.id } : null;
}

/** Whether any managed key is active (auth turns on as soon as one exists). */
export function hasActiveKeys(db: Db): boolean {
  return db.select({ id: apiKeys.id }).from(apiKeys).where(isNull(apiKeys.revokedAt)).limit(1).get() !== undefined;
}
