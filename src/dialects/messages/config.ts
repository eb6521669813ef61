// The `messages:` section of the config file, validated by its owner.

import { z } from 'zod';
import { invalidConfigSection } from '../../core/config.js';

export const messagesConfigSchema = z
  .object({
    /** MCP servers a request names in `mcp_servers`. */
    mcpServers: z
      .object({
        /** Let requests reach loopback/private/link-local addresses (off: refused, as SSRF). */
        allowPrivateNetwork: z.boolean().default(false),
        /** Per call to an MCP server (connect, list tools, call a tool). */
        timeoutMs: z.number().int().positive().default(30_000),
      })
      .strict()
      .default({ allowPrivateNetwork: false, timeoutMs: 30_000 }),
  })
  .strict();

export type MessagesConfig = z.infer<typeof messagesConfigSchema>;

/** `source`: the config file, named in errors. */
export function parseMessagesConfig(raw: unknown, source?: string): MessagesConfig {
  const parsed = messagesConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw invalidConfigSection('messages', parsed.error, source);
  }
  return parsed.data;
}
