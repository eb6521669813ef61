// The PostgreSQL connection pool the scale-out store is built on: several gateway processes share
// one database. Times are BIGINT milliseconds, so 64-bit integers are parsed as numbers (pg hands
// them out as strings by default); money and latency are float8.

import pg from 'pg';

const INT8_OID = 20;

/** pg's own parsers, except BIGINT (and COUNT(*)) as a JS number: ms timestamps fit in 2^53. */
const typeParsers = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export interface PostgresOptions {
  /** A schema of its own (created if missing): tests and side-by-side deployments keep apart. */
  schema?: string;
  /** Connections in the pool (pg's default is 10). */
  max?: number;
}

/** A schema name that needs no quoting: lower case, digits, underscores, 63 characters at most. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function openPool(url: string, options: PostgresOptions = {}): pg.Pool {
  const schema = options.schema;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) throw new Error(`Invalid PostgreSQL schema name '${schema}'`);
  return new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    types: typeParsers,
    // Every connection works in the schema; `public` stays on the path for extensions only.
    options: schema ? `-c search_path=${schema}` : undefined,
  });
}

/** Runs `work` in one transaction on one connection; rolls back when it throws. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
