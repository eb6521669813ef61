// What the chaos checks share: gateway processes on a config file, a shared store's fresh schema
// and key prefix (and dropping them), and a seeded random generator.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import readline from 'node:readline';
import { createParser } from 'eventsource-parser';

export const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
export const POSTGRES_URL = process.env.SWITCHBOARD_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';

/** A fresh PostgreSQL schema and Redis key prefix named after `name`, and the config's `store:` block for them. */
export function sharedStore(name, { leaseSeconds } = {}) {
  const schema = `${name}_${randomBytes(4).toString('hex')}`;
  const keyPrefix = `${name}:${randomBytes(4).toString('hex')}:`;
  const lease = leaseSeconds ? `    leaseSeconds: ${leaseSeconds}\n` : '';
  return { schema, keyPrefix, config: `store:\n  postgres:\n    url: ${POSTGRES_URL}\n    schema: ${schema}\n${lease}  redis:\n    url: ${REDIS_URL}\n    keyPrefix: '${keyPrefix}'\n` };
}

/** Drops the schema and the Redis keys of `sharedStore`. */
export async function dropSharedStore({ schema, keyPrefix }) {
  const { default: pg } = await import('pg');
  const { Redis } = await import('ioredis');
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).finally(() => client.end());
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${keyPrefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
}

/** `switchboard serve` on `config`; resolves with the child and its URL once it listens. */
export function startGateway(config, dataDir, env = {}) {
  const child = spawn(process.execPath, ['bin/switchboard.js', 'serve', '--config', config, '--data-dir', dataDir, '--port', '0', '--no-warm-up'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  readline.createInterface({ input: child.stderr }).on('line', (line) => process.stderr.write(`[gateway] ${line}\n`));
  return new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /listening on (http:\/\/\S+)/.exec(line);
      if (match) resolve({ child, url: match[1] });
    });
    child.once('exit', (code) => reject(new Error(`gateway exited ${code}`)));
  });
}

/** mulberry32: a seeded generator, so a failing SEED can be replayed (timing still varies). */
export function seededRandom(seed) {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { random, pick: (list) => list[Math.floor(random() * list.length)], between: (lo, hi) => lo + Math.floor(random() * (hi - lo + 1)) };
}

/** Stops loopback servers (`{ server }` as startJsonServer gives them), their kept-alive connections too. */
export function closeServers(...servers) {
  for (const { server } of servers) {
    server.close();
    server.closeAllConnections();
  }
}

/** A check's entry point: exit 1 when `main` resolves with a count of broken promises above 0, or throws. */
export function runCheck(main) {
  main().then(
    (broken) => process.exit(broken ? 1 : 0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}

/** Runs `one(n)` for n = 0 … count − 1, `concurrency` at a time; resolves with [n, result] pairs in the order they ended. */
export async function crowd(count, concurrency, one) {
  const results = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let n = next++; n < count; n = next++) results.push([n, await one(n)]);
    }),
  );
  return results;
}

/**
 * The signal of a client that hangs up `plan.hangUpAfterMs` after it starts (when set), unless
 * `plan.answered` is true by then; `plan.hungUpAt` records when.
 */
export function hangUpSignal(plan) {
  const controller = new AbortController();
  if (plan.hangUpAfterMs !== undefined) {
    setTimeout(() => {
      if (plan.answered) return;
      plan.hungUpAt = performance.now();
      controller.abort();
    }, plan.hangUpAfterMs);
  }
  return controller.signal;
}

/** The events of a whole SSE body, as eventsource-parser reads them ({event, data, id}). */
export function sseEvents(raw) {
  const events = [];
  createParser({ onEvent: (e) => events.push(e) }).feed(raw);
  return events;
}
