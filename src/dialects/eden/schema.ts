// The seed 002 request body (Eden AI's text/chat), every field, with the seed's defaults.

import { z } from 'zod';

/** "openai", "openai,anthropic", or ["openai/gpt-4o", "anthropic"]. */
const providerList = z.union([z.string(), z.array(z.string())]).transform((value) =>
  (Array.isArray(value) ? value : value.split(','))
    .map((p) => p.trim())
    .filter((p) => p.length > 0),
);

const toolCallSchema = z
  .object({
    id: z.string().min(1),
    name: z.string().min(1),
    /** JSON text of the arguments (an object is accepted and serialised). */
    arguments: z.union([z.string(), z.record(z.string(), z.unknown())]).default('{}'),
  })
  .strict();

export type EdenToolCall = z.infer<typeof toolCallSchema>;

const historySchema = z
  .object({
    role: z.enum(['user', 'assistant', 'tool']),
    message: z.string().nullable().default(''),
    /** Tools the turn offered (kept as given; Eden echoes them). */
    tools: z.array(z.unknown()).nullable().optional(),
    tool_calls: z.array(toolCallSchema).nullable().optional(),
    /** For role `tool`: the call this result answers. */
    tool_call_id: z.string().optional(),
  })
  .strict()
  .refine((h) => h.role !== 'tool' || !!h.tool_call_id, { message: 'a tool turn needs tool_call_id', path: ['tool_call_id'] });

export type EdenHistoryItem = z.infer<typeof historySchema>;

const toolSchema = z
  .object({
    name: z.string().min(1).max(64),
    description: z.string().optional(),
    /** JSON schema of the arguments. */
    parameters: z.record(z.string(), z.unknown()).default({ type: 'object', properties: {} }),
  })
  .strict();

export type EdenTool = z.infer<typeof toolSchema>;

const toolResultSchema = z
  .object({
    /** The id of the tool call this result answers. */
    id: z.string().min(1),
    result: z.unknown(),
  })
  .strict();

export type EdenToolResult = z.infer<typeof toolResultSchema>;

/** A JSON object, or its JSON text (the seed: "a dictionnary or a json object"). */
const settingsSchema = z.union([
  z.record(z.string(), z.string()),
  z.string().transform((text, ctx) => {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed) && Object.values(parsed).every((v) => typeof v === 'string')) {
        return parsed as Record<string, string>;
      }
    } catch {
      // reported below
    }
    ctx.addIssue({ code: 'custom', message: 'settings must be an object of provider → model' });
    return z.NEVER;
  }),
]);

export const edenChatRequestSchema = z
  .object({
    providers: providerList.refine((list) => list.length > 0, { message: 'at least one provider is required' }),
    settings: settingsSchema.default({}),
    fallback_providers: providerList.default([]).refine((list) => list.length <= 5, { message: 'at most 5 fallback providers' }),
    response_as_dict: z.boolean().default(true),
    attributes_as_list: z.boolean().default(false),
    /** Eden's common flag for base64 media in results; chat results carry none, so it changes nothing. */
    show_base_64: z.boolean().default(true),
    show_original_response: z.boolean().default(false),
    text: z.string().nullable().optional(),
    chatbot_global_action: z.string().nullable().optional(),
    previous_history: z.array(historySchema).default([]),
    // Eden's default is 0, applied in build-request.ts unless reasoning is on.
    temperature: z.number().min(0).max(2).optional(),
    max_tokens: z.number().int().min(1).default(4096),
    tool_choice: z.enum(['auto', 'required', 'none']).default('auto'),
    available_tools: z.array(toolSchema).default([]),
    tool_results: z.array(toolResultSchema).default([]),
    reasoning_effort: z.enum(['low', 'medium', 'high']).optional(),
  })
  .strict();

export type EdenChatRequest = z.infer<typeof edenChatRequestSchema>;
