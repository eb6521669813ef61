// The `artifacts` config section: where files produced by tools are kept and how their
// download URLs are signed.

import { z } from 'zod';
import { invalidConfigSection } from '../config.js';

export const artifactsConfigSchema = z
  .object({
    /** Local directory; defaults to <dataDir>/artifacts. */
    dir: z.string().optional(),
    /** Env var holding the HMAC secret for download URLs; else one is generated into the data dir. */
    secretEnv: z.string().optional(),
    /** How long a download URL stays valid. */
    ttlSeconds: z.number().int().positive().default(3600),
    /** Absolute base of the gateway's own download URLs (else taken from the request's Host). */
    publicBaseUrl: z.string().url().optional(),
    /** With S3 configured, artifacts go to the bucket and URLs are real S3 presigned URLs. */
    s3: z
      .object({
        bucket: z.string().min(1),
        region: z.string().default('us-east-1'),
        prefix: z.string().default('artifacts/'),
        endpoint: z.string().url().optional(),
        forcePathStyle: z.boolean().default(false),
        accessKeyIdEnv: z.string().optional(),
        secretAccessKeyEnv: z.string().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type ArtifactsConfig = z.infer<typeof artifactsConfigSchema>;

/** `source`: the config file, named in errors. */
export function parseArtifactsConfig(value: unknown, source?: string): ArtifactsConfig {
  const result = artifactsConfigSchema.safeParse(value ?? {});
  if (!result.success) {
    throw invalidConfigSection('artifacts', result.error, source);
  }
  return result.data;
}
