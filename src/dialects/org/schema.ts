// Wire schema of the organisation chat request (seeds 000 and 001). Content blocks are checked
// one by one in blocks.ts, so each gets an error that names it.

import { z } from 'zod';

const toolName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, "_" or "-"');

const messageSchema = z
  .object({
    role: z.enum(['user', 'assistant', 'system']),
    content: z.union([z.string(), z.array(z.record(z.string(), z.unknown())).min(1)]),
  })
  .strict();

const toolSpecSchema = z
  .object({
    name: toolName,
    description: z.string().optional(),
    inputSchema: z.object({ json: z.record(z.string(), z.unknown()) }).strict().optional(),
  })
  .strict();

export const orgChatRequestSchema = z
  .object({
    messages: z.array(messageSchema).min(1),
    modelId: z.string().min(1),
    temperature: z.number().min(0).max(2).default(0.7),
    maxTokens: z.number().int().min(1).max(8192).default(1024),
    topP: z.number().min(0).max(1).optional(),
    /** Ignored: the route decides (buffered or SSE). */
    stream: z.boolean().optional(),
    systemPrompt: z.string().optional(),
    stopSequences: z.array(z.string().min(1)).max(4).optional(),
    responseFormat: z
      .object({ type: z.literal('json'), jsonSchema: z.record(z.string(), z.unknown()).optional() })
      .strict()
      .optional(),
    toolConfig: z
      .object({
        tools: z.array(z.object({ toolSpec: toolSpecSchema }).strict()),
        /** Extension, as in Bedrock Converse: {auto:{}} | {any:{}} | {tool:{name}}. */
        toolChoice: z
          .union([
            z.object({ auto: z.object({}).strict() }).strict(),
            z.object({ any: z.object({}).strict() }).strict(),
            z.object({ tool: z.object({ name: toolName }).strict() }).strict(),
          ])
          .optional(),
      })
      .strict()
      .optional(),
    autoExecute: z.boolean().optional(),
    allowedTools: z.array(toolName).optional(),
  })
  .strict();

export type OrgChatRequest = z.infer<typeof orgChatRequestSchema>;
export type OrgMessage = z.infer<typeof messageSchema>;
export type OrgToolSpec = z.infer<typeof toolSpecSchema>;
