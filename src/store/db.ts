// Opens the SQLite store (bun:sqlite through drizzle-orm) in WAL mode and applies pending
// migrations, so a fresh or older database file is always at the current schema on start.
// Under Deno, deno.json maps `bun:sqlite` to src/hosts/deno-sqlite.ts (the same API over
// node:sqlite), and the database is assembled here from drizzle's bun-sqlite session rather
// than by its driver module, which imports `bun:sqlite` where Deno's import map cannot reach.

import { Database } from "bun:sqlite";
import type { BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { SQLiteBunSession } from "drizzle-orm/bun-sqlite/session";
import { migrate } from "drizzle-orm/bun-sqlite/migrator";
import { createTableRelationsHelpers, extractTablesRelationalConfig } from "drizzle-orm";
import { BaseSQLiteDatabase, SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import * as schema from "./schema.ts";

export type Db = BunSQLiteDatabase<typeof schema> & { $client: Database };

/** The database or an open transaction on it: what a store method that may join a transaction takes. */
export type Executor = Db | Parameters<Parameters<Db["transaction"]>[0]>[0];

/** Where the store lives unless `--db` or VALAR_DB says otherwise. */
export const DEFAULT_DB_PATH = "data/valar.db";

const MIGRATIONS = fileURLToPath(new URL("./migrations", import.meta.url));

/** drizzle's bun-sqlite database over `client` (what its `drizzle({ client, schema })` builds). */
function drizzleOver(client: Database): Db {
  const dialect = new SQLiteSyncDialect();
  const tables = extractTablesRelationalConfig(schema, createTableRelationsHelpers);
  const relational = { fullSchema: schema, schema: tables.tables, tableNamesMap: tables.tableNamesMap };
  const session = new SQLiteBunSession(client, dialect, relational, {});
  const db = new BaseSQLiteDatabase("sync", dialect, session as never, relational) as unknown as Db;
  db.$client = client;
  return db;
}

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
  const db = drizzleOver(sqlite);
  migrate(db, { migrationsFolder: MIGRATIONS });
  return db;
}

export function closeDb(db: Db): void {
  db.$client.close();
}
