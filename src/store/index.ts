// Opens the configured store: the SQLite file in the data directory (the embedded default), or
// PostgreSQL shared by several processes, with Redis for their shared rate limits and signals.

import { configSource, type Config } from '../core/config.js';
import { withoutCredentials } from '../core/errors.js';
import { parseStoreConfig } from './config.js';
import { PostgresStore } from './postgres.js';
import { RedisCoordination } from './redis-coordination.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './store.js';

/** `serving`: the store of a long-running server (SQLite's WAL checkpoints move to a worker thread). */
export async function openStore(
  config: Config,
  dataDir: string,
  /** existing: the SQLite store must be there already (commands that only read or change it). */
  options: { serving?: boolean; env?: NodeJS.ProcessEnv; existing?: boolean } = {},
): Promise<Store> {
  const { postgres, redis } = parseStoreConfig(config.store, options.env, configSource(config));
  if (!postgres) return SqliteStore.inDataDir(dataDir, { backgroundCheckpoints: options.serving === true, existing: options.existing });
  const coordination = redis
    ? await RedisCoordination.connect(redis.url, { keyPrefix: redis.keyPrefix }).catch((err: unknown) => {
        throw new Error(`Cannot reach Redis at ${withoutCredentials(redis.url)} (store.redis or SWITCHBOARD_REDIS_URL): ${(err as Error).message}`, { cause: err });
      })
    : undefined;
  return PostgresStore.open(postgres.url, { schema: postgres.schema, max: postgres.poolSize, leaseMs: postgres.leaseMs, coordination }).catch((err: unknown) => {
    throw new Error(`Cannot open the PostgreSQL store at ${withoutCredentials(postgres.url)} (store.postgres or SWITCHBOARD_POSTGRES_URL): ${(err as Error).message}`, { cause: err });
  });
}
