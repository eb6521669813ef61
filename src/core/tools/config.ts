// The `tools` and `mcp` config sections: executable tools the server knows. Validated here
// (config.ts keeps them as opaque placeholders) so the tool feature owns its own settings.

import { z } from 'zod';
import { invalidConfigSection } from '../config.js';

const toolName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'tool names are 1-64 letters, digits, "_" or "-"');

const httpToolSchema = z
  .object({
    name: toolName,
    description: z.string().optional(),
    /** JSON Schema of the input object the model must produce. */
    inputSchema: z.record(z.string(), z.unknown()).default({ type: 'object', properties: {} }),
    /** The input is POSTed here as JSON; the JSON (or image/file) response is the result. */
    url: z.string().url(),
    /** Header name → name of the env var holding its value (secrets never sit in the file). */
    headersFromEnv: z.record(z.string(), z.string()).default({}),
    timeoutMs: z.number().int().positive().default(30_000),
    /** Loopback/private/link-local targets are refused unless this is set. */
    allowPrivateNetwork: z.boolean().default(false),
    /** Runs in the background: the chat answers at once with an executionId to poll. */
    async: z.boolean().default(false),
  })
  .strict();

export const toolsConfigSchema = z
  .object({
    /** Model calls per auto-executed request (tool rounds + the final answer). */
    maxRounds: z.number().int().min(1).max(32).default(5),
    /** Built-in tools to offer; all of them by default. */
    builtins: z.array(z.string()).optional(),
    http: z.array(httpToolSchema).default([]),
    /** Largest result (bytes) accepted from an HTTP tool. */
    maxResultBytes: z.number().int().positive().default(10 * 1024 * 1024),
  })
  .strict();

const mcpServerSchema = z
  .object({
    name: toolName,
    transport: z.enum(['stdio', 'http']),
    /** stdio: the command and its arguments. */
    command: z.string().optional(),
    args: z.array(z.string()).default([]),
    /** stdio: extra environment for the server process. */
    env: z.record(z.string(), z.string()).default({}),
    cwd: z.string().optional(),
    /** http: the streamable HTTP endpoint. */
    url: z.string().url().optional(),
    headersFromEnv: z.record(z.string(), z.string()).default({}),
    allowPrivateNetwork: z.boolean().default(false),
    /** Names of this server's tools that run in the background (executionId polling). */
    asyncTools: z.array(z.string()).default([]),
    timeoutMs: z.number().int().positive().default(30_000),
  })
  .strict()
  .refine((s) => (s.transport === 'stdio' ? !!s.command : !!s.url), { message: 'stdio servers need `command`, http servers need `url`' });

export const mcpConfigSchema = z
  .object({
    servers: z.array(mcpServerSchema).default([]),
  })
  .strict();

export type ToolsConfig = z.infer<typeof toolsConfigSchema>;
export type HttpToolConfig = z.infer<typeof httpToolSchema>;
export type McpConfig = z.infer<typeof mcpConfigSchema>;
export type McpServerConfig = z.infer<typeof mcpServerSchema>;

function parseSection<T extends z.ZodType>(schema: T, value: unknown, section: string, source: string | undefined): z.infer<T> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) {
    throw invalidConfigSection(section, result.error, source);
  }
  return result.data;
}

/** `source`: the config file, named in errors. */
export function parseToolsConfig(value: unknown, source?: string): ToolsConfig {
  return parseSection(toolsConfigSchema, value, 'tools', source);
}

export function parseMcpConfig(value: unknown, source?: string): McpConfig {
  return parseSection(mcpConfigSchema, value, 'mcp', source);
}
