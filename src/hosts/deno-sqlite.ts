// `bun:sqlite` for Deno: the part of its Database API the store uses (through drizzle's
// bun-sqlite session and directly), over node:sqlite's DatabaseSync. deno.json's import map
// puts this module where `bun:sqlite` is imported, so the schema, migrations and store code
// are the same on both hosts.

import { DatabaseSync, type StatementSync } from "node:sqlite";

type Param = string | number | bigint | boolean | null | undefined | Uint8Array;
type Bindable = string | number | bigint | null | Uint8Array;

/** Values bun:sqlite binds that node:sqlite refuses: booleans as 0/1, undefined as NULL. */
const bindable = (params: Param[]): Bindable[] =>
  params.map((p) => (p === undefined ? null : typeof p === "boolean" ? (p ? 1 : 0) : p));

export class Statement {
  private arrays: StatementSync | null = null;

  constructor(private readonly db: DatabaseSync, private readonly sql: string, private readonly stmt: StatementSync) {}

  run(...params: Param[]): { changes: number; lastInsertRowid: number } {
    const r = this.stmt.run(...bindable(params));
    return { changes: Number(r.changes), lastInsertRowid: Number(r.lastInsertRowid) };
  }

  all(...params: Param[]): Record<string, unknown>[] {
    return this.stmt.all(...bindable(params)) as Record<string, unknown>[];
  }

  get(...params: Param[]): Record<string, unknown> | null {
    return (this.stmt.get(...bindable(params)) as Record<string, unknown> | undefined) ?? null;
  }

  /** Rows as arrays (drizzle reads selected columns by position: two may share a name). */
  values(...params: Param[]): unknown[][] {
    if (!this.arrays) {
      this.arrays = this.db.prepare(this.sql);
      (this.arrays as StatementSync & { setReturnArrays(on: boolean): void }).setReturnArrays(true);
    }
    return this.arrays.all(...bindable(params)) as unknown as unknown[][];
  }

  finalize(): void {}
}

type TransactionFn<T> = ((...args: unknown[]) => T) & { deferred: (...args: unknown[]) => T; immediate: (...args: unknown[]) => T; exclusive: (...args: unknown[]) => T };

export class Database {
  private readonly db: DatabaseSync;
  private readonly cache = new Map<string, Statement>();
  private depth = 0;

  constructor(path = ":memory:", _opts: { create?: boolean; strict?: boolean; readonly?: boolean } = {}) {
    this.db = new DatabaseSync(path);
  }

  exec(sql: string): void {
    this.db.exec(sql);
  }

  run(sql: string, ...params: Param[]): { changes: number; lastInsertRowid: number } {
    return this.prepare(sql).run(...params);
  }

  prepare(sql: string): Statement {
    return new Statement(this.db, sql, this.db.prepare(sql));
  }

  /** A prepared statement kept for the database's lifetime, as bun:sqlite's query() does. */
  query(sql: string): Statement {
    let s = this.cache.get(sql);
    if (!s) this.cache.set(sql, (s = this.prepare(sql)));
    return s;
  }

  /** fn in a transaction (a savepoint when nested), committed when it returns, rolled back when it throws. */
  transaction<T>(fn: (...args: unknown[]) => T): TransactionFn<T> {
    const run = (begin: string) => (...args: unknown[]): T => {
      const nested = this.depth > 0;
      const savepoint = `bun_sqlite_shim_${this.depth}`;
      this.db.exec(nested ? `SAVEPOINT ${savepoint}` : begin);
      this.depth++;
      try {
        const result = fn(...args);
        this.depth--;
        this.db.exec(nested ? `RELEASE ${savepoint}` : "COMMIT");
        return result;
      } catch (e) {
        this.depth--;
        this.db.exec(nested ? `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}` : "ROLLBACK");
        throw e;
      }
    };
    return Object.assign(run("BEGIN DEFERRED"), { deferred: run("BEGIN DEFERRED"), immediate: run("BEGIN IMMEDIATE"), exclusive: run("BEGIN EXCLUSIVE") });
  }

  close(): void {
    this.cache.clear();
    this.db.close();
  }
}
