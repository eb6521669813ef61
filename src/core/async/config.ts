// The `async:` section of the config file (seed 003 async runs), validated here by its owner.

import { z } from 'zod';
import { invalidConfigSection } from '../config.js';

export const asyncConfigSchema = z
  .object({
    /** Runs executed at the same time by one process; the rest wait in the priority queue. */
    concurrency: z.number().int().min(1).default(2),
    /** How long a finished run and its events are kept, in hours. */
    retentionHours: z.number().positive().default(168),
    /** How often finished runs past retention are deleted, in seconds. */
    pruneIntervalSeconds: z.number().int().positive().default(600),
  })
  .strict();

export type AsyncConfig = z.infer<typeof asyncConfigSchema>;

/** `source`: the config file, named in errors. */
export function parseAsyncConfig(raw: unknown, source?: string): AsyncConfig {
  const parsed = asyncConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw invalidConfigSection('async', parsed.error, source);
  }
  return parsed.data;
}
