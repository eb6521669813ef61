// PostgreSQL and Redis for the scale-out suites. With SWITCHBOARD_REQUIRE_SERVICES set (.ci/run
// sets it) a service that cannot be reached fails the suite; without it, the suite is skipped.
import net from 'node:net';
import { randomBytes } from 'node:crypto';

export const POSTGRES_URL = process.env.SWITCHBOARD_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const REQUIRED = Boolean(process.env.SWITCHBOARD_REQUIRE_SERVICES);

function reachable(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname || '127.0.0.1', port: Number(port) });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(2000, () => done(false));
  });
}

/**
 * `{ skip }` options for node:test: false when the service answers; a reason string when it does
 * not and services are optional; throws when they are required.
 */
export async function serviceSkip(name, url) {
  if (await reachable(url)) return false;
  if (REQUIRED) throw new Error(`${name} at ${url} is not reachable and SWITCHBOARD_REQUIRE_SERVICES is set`);
  return `${name} not reachable at ${url} (set SWITCHBOARD_REQUIRE_SERVICES to make this a failure)`;
}

/** A fresh schema name per suite, so suites running side by side never share tables. */
export function uniqueSchema(prefix = 'sbtest') {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** Drops a test schema (and everything in it) with a short-lived pool. */
export async function dropSchema(schema) {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

/** A unique Redis key prefix per suite. */
export function uniquePrefix(prefix = 'sbtest') {
  return `${prefix}:${randomBytes(6).toString('hex')}:`;
}
