// The `store:` section of the config file, validated here by its owner. Without it the store is
// the SQLite file in the data directory; a PostgreSQL URL (config or env) selects the scale-out
// store, and a Redis URL adds what several processes must share live (rate limits, run wake-ups).

import { z } from 'zod';
import { SCHEMA_NAME } from './postgres-pool.js';
import { invalidConfig, invalidConfigSection } from '../core/config.js';

const postgresSchema = z
  .object({
    /** Connection URL; the env var named by urlEnv wins (so the password stays out of the file). */
    url: z.string().min(1).optional(),
    urlEnv: z.string().default('SWITCHBOARD_POSTGRES_URL'),
    /** A schema of its own, created if missing (default: the connection's search_path). */
    schema: z.string().regex(SCHEMA_NAME).optional(),
    poolSize: z.number().int().min(1).default(10),
    /** A process's async runs count as orphaned this long after its last heartbeat. */
    leaseSeconds: z.number().positive().default(15),
  })
  .strict();

const redisSchema = z
  .object({
    url: z.string().min(1).optional(),
    urlEnv: z.string().default('SWITCHBOARD_REDIS_URL'),
    /** Prefix of every key and channel, so several deployments can share one Redis. */
    keyPrefix: z.string().default('switchboard:'),
  })
  .strict();

export const storeConfigSchema = z
  .object({
    postgres: postgresSchema.prefault({}),
    redis: redisSchema.prefault({}),
  })
  .strict();

export interface ResolvedStoreConfig {
  postgres?: { url: string; schema?: string; poolSize: number; leaseMs: number };
  redis?: { url: string; keyPrefix: string };
}

/** `source`: the config file, named in errors. */
export function parseStoreConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env, source?: string): ResolvedStoreConfig {
  const parsed = storeConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw invalidConfigSection('store', parsed.error, source);
  }
  const { postgres, redis } = parsed.data;
  const postgresUrl = env[postgres.urlEnv] || postgres.url;
  const redisUrl = env[redis.urlEnv] || redis.url;
  if (redisUrl && !postgresUrl) {
    throw invalidConfig('store.redis needs store.postgres — Redis coordinates processes that share a PostgreSQL store; the SQLite file belongs to one process', source);
  }
  return {
    postgres: postgresUrl ? { url: postgresUrl, schema: postgres.schema, poolSize: postgres.poolSize, leaseMs: postgres.leaseSeconds * 1000 } : undefined,
    redis: redisUrl ? { url: redisUrl, keyPrefix: redis.keyPrefix } : undefined,
  };
}
