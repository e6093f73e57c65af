// `valar keys create --org NAME [--name LABEL]`: prints a new key once (only its hash is stored).
// `valar keys list`: id, prefix, organization, created, revoked.
// `valar keys revoke KEY_ID`.
// All take `--db PATH` (default VALAR_DB, then data/valar.db).

import { openDb, closeDb, DEFAULT_DB_PATH } from "../store/db.ts";
import { createKey, listKeys, revokeKey } from "../store/keys.ts";

const USAGE = `usage:
  valar keys create --org NAME [--name LABEL] [--db PATH]
  valar keys list [--db PATH]
  valar keys revoke KEY_ID [--db PATH]`;

interface Parsed {
  positional: string[];
  flags: Map<string, string>;
}

function parse(argv: string[]): Parsed | string {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    if (eq > 0) {
      flags.set(a.slice(2, eq), a.slice(eq + 1));
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined || value.startsWith("--")) return `missing value for ${a}`;
    flags.set(a.slice(2), value);
    i++;
  }
  return { positional, flags };
}

const KNOWN_FLAGS = new Set(["org", "name", "db"]);

const iso = (ms: number | null) => (ms === null ? "-" : new Date(ms).toISOString());

type Command = (p: Parsed, dbPath: string) => number;

const COMMANDS: Record<string, Command> = {
  create(p, dbPath) {
    const org = p.flags.get("org");
    if (!org) {
      console.error("keys create: --org NAME is required");
      return 2;
    }
    const db = openDb(dbPath);
    try {
      const k = createKey(db, org, p.flags.get("name") ?? null);
      console.log(k.key);
      console.error(`created ${k.id} for organization '${k.organization}' (${k.organizationId}); the key is shown only once`);
      return 0;
    } finally {
      closeDb(db);
    }
  },
  list(_p, dbPath) {
    const db = openDb(dbPath);
    try {
      const rows = listKeys(db);
      console.log(["id", "prefix", "organization", "name", "created", "revoked"].join("\t"));
      for (const r of rows) {
        console.log([r.id, `${r.prefix}…`, r.organization, r.name ?? "-", iso(r.createdAt), iso(r.revokedAt)].join("\t"));
      }
      return 0;
    } finally {
      closeDb(db);
    }
  },
  revoke(p, dbPath) {
    const id = p.positional[1];
    if (!id) {
      console.error("keys revoke: KEY_ID is required (see `keys list`)");
      return 2;
    }
    const db = openDb(dbPath);
    try {
      if (!revokeKey(db, id)) {
        console.error(`keys revoke: no active key with id '${id}'`);
        return 1;
      }
      console.log(`revoked ${id}`);
      return 0;
    } finally {
      closeDb(db);
    }
  },
};

/** Runs `keys …`; `argv` may start with "keys" or directly with the subcommand. Returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const args = argv[0] === "keys" ? argv.slice(1) : argv;
  const p = parse(args);
  if (typeof p === "string") {
    console.error(`keys: ${p}\n${USAGE}`);
    return 2;
  }
  const unknown = [...p.flags.keys()].find((f) => !KNOWN_FLAGS.has(f));
  if (unknown) {
    console.error(`keys: unknown option --${unknown}\n${USAGE}`);
    return 2;
  }
  const cmd = COMMANDS[p.positional[0] ?? ""];
  if (!cmd) {
    console.error(USAGE);
    return 2;
  }
  const dbPath = p.flags.get("db") ?? process.env.VALAR_DB ?? DEFAULT_DB_PATH;
  try {
    return cmd(p, dbPath);
  } catch (err) {
    console.error(`keys: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

if (import.meta.main) process.exit(await run(process.argv.slice(2)));
