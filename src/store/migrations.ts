// Schema changes after the baseline tables. Each store first runs its baseline DDL (every
// `CREATE ... IF NOT EXISTS` it had when this mechanism began, kept frozen), then the steps below
// that its database has not had yet, in order, recording each in `switchboard_schema_migrations`
// (prefixed: a PostgreSQL database may be shared with an application that has its own
// `schema_migrations`). A database written by a newer Switchboard (a version this code does not
// know) is refused rather than guessed at. A new change is a new step at the end; a step is never
// edited once released.

export interface Migration {
  version: number;
  description: string;
  sqlite: string;
  postgres: string;
}

const usageColumns = (integer: string) => `
ALTER TABLE request_log ADD COLUMN cache_read_tokens ${integer} NOT NULL DEFAULT 0;
ALTER TABLE request_log ADD COLUMN cache_write_tokens ${integer} NOT NULL DEFAULT 0;
ALTER TABLE request_log ADD COLUMN reasoning_tokens ${integer} NOT NULL DEFAULT 0;
ALTER TABLE request_log ADD COLUMN server_tool_use TEXT;
`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'request_log: cache read/write and reasoning tokens, server tool requests by kind',
    sqlite: usageColumns('INTEGER'),
    postgres: usageColumns('INTEGER'),
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS.at(-1)?.version ?? 0;

/** Where applied steps are recorded (one name, so a rename cannot miss a query). */
const TABLE = 'switchboard_schema_migrations';

export const MIGRATIONS_TABLE = {
  sqlite: `CREATE TABLE IF NOT EXISTS ${TABLE} (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL);`,
  postgres: `CREATE TABLE IF NOT EXISTS ${TABLE} (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL);`,
};

/** The steps a database at `current` still needs; throws when it is newer than this code. */
export function pendingMigrations(current: number, where: string): Migration[] {
  if (current > LATEST_SCHEMA_VERSION) {
    throw new Error(
      `${where} is at schema version ${current}, written by a newer Switchboard; this one knows versions up to ${LATEST_SCHEMA_VERSION}. ` +
        'Run the newer Switchboard, or point this one at another database.',
    );
  }
  return MIGRATIONS.filter((m) => m.version > current);
}

/** Minimal driver surfaces, so this module needs neither driver. */
interface SqliteHandle {
  exec(sql: string): unknown;
  prepare(sql: string): { get(...args: unknown[]): unknown; run(...args: unknown[]): unknown };
  transaction(fn: () => void): { immediate(): void };
}
interface PostgresClient {
  query(sql: string, args?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>;
}

/**
 * Brings a SQLite database up to date in one IMMEDIATE transaction: a second process opening the
 * same file (a CLI command beside the server) waits, then finds nothing left to do.
 */
export function migrateSqlite(db: SqliteHandle, where: string): Migration[] {
  let applied: Migration[] = [];
  db.transaction(() => {
    db.exec(MIGRATIONS_TABLE.sqlite);
    const row = db.prepare(`SELECT COALESCE(MAX(version), 0) AS version FROM ${TABLE}`).get() as { version: number };
    applied = pendingMigrations(row.version, where);
    const record = db.prepare(`INSERT INTO ${TABLE} (version, description, applied_at) VALUES (?, ?, ?)`);
    for (const m of applied) {
      db.exec(m.sqlite);
      record.run(m.version, m.description, Date.now());
    }
  }).immediate();
  return applied;
}

/** The same on PostgreSQL, on a client already inside the transaction that holds the migration lock. */
export async function migratePostgres(client: PostgresClient, where: string): Promise<Migration[]> {
  await client.query(MIGRATIONS_TABLE.postgres);
  const { rows } = await client.query(`SELECT COALESCE(MAX(version), 0)::int AS version FROM ${TABLE}`);
  const applied = pendingMigrations(Number(rows[0]!.version), where);
  for (const m of applied) {
    await client.query(m.postgres);
    await client.query(`INSERT INTO ${TABLE} (version, description, applied_at) VALUES ($1, $2, $3)`, [m.version, m.description, Date.now()]);
  }
  return applied;
}
