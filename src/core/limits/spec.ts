// What an operator can limit, per key and per organisation, and the `limits:` section of the
// config file. Validated here (config.ts leaves `limits` to this feature).

import { z } from 'zod';
import { configSource, invalidConfigSection, type Config } from '../config.js';

/** Money per period, in USD. A period is a UTC calendar day or month. */
export const budgetSpecSchema = z
  .object({
    day: z.number().nonnegative().optional(),
    month: z.number().nonnegative().optional(),
  })
  .strict();

/** Rate limits and budgets for one key or one organisation; an absent field is no limit. */
export const limitSpecSchema = z
  .object({
    /** Requests per minute (sliding 60 s window). */
    rpm: z.number().int().positive().optional(),
    /** Tokens per minute: the prompt estimated before the call, corrected to input+output after. */
    tpm: z.number().int().positive().optional(),
    /** Requests in flight at once. */
    concurrent: z.number().int().positive().optional(),
    budget: budgetSpecSchema.optional(),
  })
  .strict();

export type LimitSpec = z.infer<typeof limitSpecSchema>;
export type BudgetPeriod = keyof z.infer<typeof budgetSpecSchema>;

const organisationConfigSchema = limitSpecSchema
  .extend({
    /** Log request bodies (secrets redacted) for this organisation. Off unless set. */
    logBodies: z.boolean().optional(),
  })
  .strict();

export const limitsConfigSchema = z
  .object({
    /** Output tokens a budget reserves when a request gives no max tokens (capped by the model's context). */
    defaultMaxTokens: z.number().int().positive().default(1024),
    /** Limits for every key that has none of its own. */
    keys: limitSpecSchema.optional(),
    /** Limits and settings per organisation; admin API settings override these. */
    organisations: z.record(z.string(), organisationConfigSchema).default({}),
    requestLog: z
      .object({
        /** Request-log rows older than this are deleted (checked at start and every hour). 0 keeps them forever. */
        retentionDays: z.number().nonnegative().default(30),
      })
      .strict()
      .default({ retentionDays: 30 }),
  })
  .strict();

export type LimitsConfig = z.infer<typeof limitsConfigSchema>;
export type OrganisationConfig = z.infer<typeof organisationConfigSchema>;

/** Parses `config.limits`, naming the field at fault. */
export function limitsConfigOf(config: Config): LimitsConfig {
  const parsed = limitsConfigSchema.safeParse(config.limits ?? {});
  if (!parsed.success) {
    throw invalidConfigSection('limits', parsed.error, configSource(config));
  }
  return parsed.data;
}

/** True when the spec limits anything. */
export function hasLimits(spec: LimitSpec | undefined): spec is LimitSpec {
  return !!spec && (spec.rpm !== undefined || spec.tpm !== undefined || spec.concurrent !== undefined || spec.budget?.day !== undefined || spec.budget?.month !== undefined);
}
