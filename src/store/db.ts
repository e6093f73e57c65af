// Opens the SQLite store (bun:sqlite through drizzle-orm) in WAL mode and applies pending
// migrations, so a fresh or older database file is always at the current schema on start.

import { Database } from "bun:sqlite";
import { drizzle, type BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { migrate } from "drizzle-orm/bun-sqlite/migrator";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import * as schema from "./schema.ts";

export type Db = BunSQLiteDatabase<typeof schema> & { $client: Database };

/** The database or an open transaction on it: what a store method that may join a transaction takes. */
export type Executor = Db | Parameters<Parameters<Db["transaction"]>[0]>[0];

/** Where the store lives unless `--db` or VALAR_DB says otherwise. */
export const DEFAULT_DB_PATH = "data/valar.db";

const MIGRATIONS = join(import.meta.dir, "migrations");

/** `path` is a file path or ":memory:". */
export function openDb(path: string): Db {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const sqlite = new Database(path, { create: true, strict: true });
  // Several server processes (and the `keys` CLI) may share the file: wait instead of failing,
  // from the first statement on (switching to WAL takes a lock too: it failed with SQLITE_BUSY
  // while another process was closing the file).
  sqlite.exec("PRAGMA busy_timeout = 5000");
  sqlite.exec("PRAGMA journal_mode = WAL");
  sqlite.exec("PRAGMA foreign_keys = ON");
  sqlite.exec("PRAGMA synchronous = NORMAL");
  const db = drizzle({ client: sqlite, schema }) as Db;
  migrate(db, { migrationsFolder: MIGRATIONS });
  return db;
}

export function closeDb(db: Db): void {
  db.$client.close();
}
