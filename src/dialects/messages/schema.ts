// The wire schema of POST /v1/messages (and /v1/messages/async): Anthropic's Messages body plus
// seed 003's extensions. Unknown fields are refused with a 400 naming them, so nothing is
// silently dropped; fields whose meaning depends on the provider are checked in field-policy.ts.

import { z } from 'zod';

const cacheControlSchema = z
  .object({ type: z.literal('ephemeral'), ttl: z.enum(['5m', '1h']).optional() })
  .strict();

const citationsSchema = z.object({ enabled: z.boolean().optional() }).strict();

export const textBlockSchema = z
  .object({
    type: z.literal('text'),
    text: z.string(),
    cache_control: cacheControlSchema.nullable().optional(),
    /** Citations a previous answer carried; kept out of the prompt (Anthropic ignores them too). */
    citations: z.array(z.unknown()).nullable().optional(),
  })
  .strict();

/** A file uploaded to Anthropic's Files API: refused with a reason in parse-request.ts. */
const fileSourceSchema = z.object({ type: z.literal('file'), file_id: z.string().min(1) }).strict();

const imageSourceSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('base64'), media_type: z.string().min(1), data: z.string().min(1) }).strict(),
  z.object({ type: z.literal('url'), url: z.string().url() }).strict(),
  fileSourceSchema,
]);

const imageBlockSchema = z
  .object({
    type: z.literal('image'),
    source: imageSourceSchema,
    cache_control: cacheControlSchema.nullable().optional(),
    // What Anthropic does with an image over its size limit (downsize, or error): passed to it.
    transformations: z.object({ oversized_image: z.enum(['downsize', 'error']).optional() }).strict().nullable().optional(),
  })
  .strict();

const documentSourceSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('base64'), media_type: z.string().min(1), data: z.string().min(1) }).strict(),
  z.object({ type: z.literal('text'), media_type: z.literal('text/plain').optional(), data: z.string() }).strict(),
  z.object({ type: z.literal('content'), content: z.union([z.string(), z.array(z.union([textBlockSchema, imageBlockSchema]))]) }).strict(),
  z.object({ type: z.literal('url'), url: z.string().url() }).strict(),
  fileSourceSchema,
]);

const documentBlockSchema = z
  .object({
    type: z.literal('document'),
    source: documentSourceSchema,
    title: z.string().nullable().optional(),
    context: z.string().nullable().optional(),
    citations: citationsSchema.nullable().optional(),
    cache_control: cacheControlSchema.nullable().optional(),
  })
  .strict();

/** A search result the model may cite (Anthropic's RAG block), in a user turn or a tool result. */
const searchResultBlockSchema = z
  .object({
    type: z.literal('search_result'),
    source: z.string(),
    title: z.string(),
    content: z.array(textBlockSchema),
    citations: citationsSchema.nullable().optional(),
    cache_control: cacheControlSchema.nullable().optional(),
  })
  .strict();

/** Tool search's answer: a deferred tool to load (read by Anthropic; a note for other providers). */
const toolReferenceBlockSchema = z
  .object({ type: z.literal('tool_reference'), tool_name: z.string().min(1), cache_control: cacheControlSchema.nullable().optional() })
  .strict();
/** A browser toolset call's resulting browser state (Anthropic renders it for the model). */
const browserStateBlockSchema = z
  .object({
    type: z.literal('browser_state'),
    tabs: z.array(z.record(z.string(), z.unknown())),
    state_changes: z.array(z.record(z.string(), z.unknown())).nullable().optional(),
    cache_control: cacheControlSchema.nullable().optional(),
  })
  .strict();

const thinkingBlockSchema = z.object({ type: z.literal('thinking'), thinking: z.string(), signature: z.string() }).strict();
const redactedThinkingBlockSchema = z.object({ type: z.literal('redacted_thinking'), data: z.string() }).strict();

const toolUseBlockSchema = z
  .object({
    type: z.literal('tool_use'),
    id: z.string().min(1),
    name: z.string().min(1),
    input: z.unknown(),
    cache_control: cacheControlSchema.nullable().optional(),
    // As Anthropic's responses now carry them and clients send the block back unchanged: who made
    // the call (`{type: 'direct'}` for the model itself) and the toolset it came from.
    caller: z.object({ type: z.string() }).passthrough().nullable().optional(),
    toolset_name: z.string().nullable().optional(),
  })
  .strict();

const toolResultBlockSchema = z
  .object({
    type: z.literal('tool_result'),
    tool_use_id: z.string().min(1),
    content: z.union([z.string(), z.array(z.union([textBlockSchema, imageBlockSchema, documentBlockSchema, searchResultBlockSchema, toolReferenceBlockSchema, browserStateBlockSchema]))]).optional(),
    is_error: z.boolean().optional(),
    cache_control: cacheControlSchema.nullable().optional(),
    // The toolset of the paired tool_use (as its `toolset_name`, accepted and not needed here).
    toolset_name: z.string().nullable().optional(),
  })
  .strict();

/** Blocks of a tool the server ran on an MCP server in an earlier turn, sent back as history. */
const mcpToolUseBlockSchema = z
  .object({
    type: z.literal('mcp_tool_use'),
    id: z.string().min(1),
    name: z.string().min(1),
    server_name: z.string(),
    input: z.unknown(),
    cache_control: cacheControlSchema.nullable().optional(),
  })
  .strict();
const mcpToolResultBlockSchema = z
  .object({
    type: z.literal('mcp_tool_result'),
    tool_use_id: z.string().min(1),
    is_error: z.boolean().optional(),
    content: z.union([z.string(), z.array(textBlockSchema)]).optional(),
    cache_control: cacheControlSchema.nullable().optional(),
  })
  .strict();

/** The boundary a fallback left in an earlier answer (fallbacks.ts), sent back as history: not part of the prompt. */
const fallbackBlockSchema = z
  .object({
    type: z.literal('fallback'),
    from: z.object({ model: z.string() }).passthrough(),
    to: z.object({ model: z.string() }).passthrough(),
    // "Accepted and ignored by the server; any object or null is allowed."
    trigger: z.record(z.string(), z.unknown()).nullable().optional(),
  })
  .strict();

/** An MCP server's tool listing from an earlier Anthropic answer, sent back as history: not part of the prompt. */
const mcpToolListingBlockSchema = z.object({ type: z.literal('mcp_tool_listing'), mcp_server_name: z.string(), tools: z.array(z.unknown()) }).strict();


/** A compaction an earlier request produced (compaction.ts), sent back first in `messages`. */
const compactionBlockSchema = z
  .object({
    type: z.literal('compaction'),
    // Null: a failed compaction, which changes nothing. Anthropic refuses an empty summary.
    content: z.string().min(1).nullable().optional(),
    encrypted_content: z.string().nullable().optional(),
    signature: z.string().nullable().optional(),
    tool_changes: z.array(z.record(z.string(), z.unknown())).nullable().optional(),
    cache_control: cacheControlSchema.nullable().optional(),
  })
  .strict();

/** A tool by name: one in `tools` or defined earlier in `messages`. */
const toolReferenceSchema = z.object({ type: z.literal('tool_reference'), name: z.string().min(1) }).strict();
const mcpToolReferenceSchema = z.object({ type: z.literal('mcp_tool_reference'), name: z.string().min(1), server_name: z.string().min(1) }).strict();
const mcpToolsetReferenceSchema = z.object({ type: z.literal('mcp_toolset_reference'), server_name: z.string().min(1) }).strict();

/** The inline-tools beta: a tool offered (by reference or by definition) or withdrawn from this point on (parse-request.ts). */
const toolAdditionBlockSchema = z
  .object({
    type: z.literal('tool_addition'),
    tool: z.discriminatedUnion('type', [
      toolReferenceSchema,
      mcpToolReferenceSchema,
      mcpToolsetReferenceSchema,
      z.object({ type: z.literal('tool_definition'), definition: z.record(z.string(), z.unknown()) }).strict(),
    ]),
    cache_control: cacheControlSchema.nullable().optional(),
  })
  .strict();
const toolRemovalBlockSchema = z
  .object({
    type: z.literal('tool_removal'),
    tool: z.discriminatedUnion('type', [toolReferenceSchema, mcpToolReferenceSchema, mcpToolsetReferenceSchema]),
    cache_control: cacheControlSchema.nullable().optional(),
  })
  .strict();

export const contentBlockSchema = z.discriminatedUnion('type', [
  textBlockSchema,
  imageBlockSchema,
  documentBlockSchema,
  searchResultBlockSchema,
  thinkingBlockSchema,
  redactedThinkingBlockSchema,
  toolUseBlockSchema,
  toolResultBlockSchema,
  mcpToolUseBlockSchema,
  mcpToolResultBlockSchema,
  fallbackBlockSchema,
  mcpToolListingBlockSchema,
  compactionBlockSchema,
  toolAdditionBlockSchema,
  toolRemovalBlockSchema,
]);

/**
 * Blocks of Anthropic's server tools from an earlier answer (server_tool_use,
 * web_search_tool_result…, container_upload): sent back to Anthropic as they are.
 */
const SERVER_BLOCK_TYPE = /^(?:server_tool_use|container_upload|(?!mcp_tool_result$)[a-z][a-z0-9_]*_tool_result)$/;
export function isServerBlockType(type: string): boolean {
  return SERVER_BLOCK_TYPE.test(type);
}
// A pattern rather than a refinement, so the OpenAPI document says it too.
export const serverBlockSchema = z.object({ type: z.string().regex(SERVER_BLOCK_TYPE, { message: 'is not a content block type', abort: true }) }).catchall(z.unknown());

const messageSchema = z
  .object({
    role: z.enum(['user', 'assistant', 'system']),
    // Left out only by a system message that carries output_config (parse-request.ts checks).
    content: z.union([z.string(), z.array(z.union([contentBlockSchema, serverBlockSchema]))]).optional(),
    // The beta's system messages: shown until the next user message, and a per-turn effort.
    clear_at: z.enum(['next_user_message', 'never']).nullable().optional(),
    output_config: z.object({ effort: z.enum(['low', 'medium', 'high', 'xhigh', 'max']).nullable().optional() }).strict().nullable().optional(),
  })
  .strict();

/** seed 003: str, list[str], System, list[System] or null. */
const systemSchema = z.union([z.string(), z.array(z.union([z.string(), textBlockSchema])), textBlockSchema]).nullable();

export const toolSchema = z
  .object({
    type: z.literal('custom').nullable().optional(),
    name: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be 1-128 characters of a-z, A-Z, 0-9, underscores and dashes'),
    description: z.string().optional(),
    input_schema: z.object({ type: z.literal('object') }).catchall(z.unknown()),
    cache_control: cacheControlSchema.nullable().optional(),
    strict: z.boolean().optional(),
    // Anthropic's own (tool search, programmatic calls, examples, input streaming): passed to an
    // Anthropic upstream with the tool; other providers offer the tool without them.
    defer_loading: z.boolean().optional(),
    allowed_callers: z.array(z.string().min(1)).optional(),
    input_examples: z.array(z.record(z.string(), z.unknown())).optional(),
    eager_input_streaming: z.boolean().nullable().optional(),
  })
  .strict();

/** The fields of a custom tool only Anthropic reads. */
export const ANTHROPIC_TOOL_FIELDS = ['defer_loading', 'allowed_callers', 'input_examples', 'eager_input_streaming'] as const;

/** Anthropic's own tools (`web_search_20250305`, `code_execution_20250825`…): type and name, the rest as written. */
const serverToolSchema = z
  .object({
    // abort: a union then weighs this branch against the custom tool's instead of taking its complaint.
    // Tool search's types may also come undated.
    type: z.string().regex(/^(?:[a-z][a-z0-9_]*_\d{8}|tool_search_tool_(?:bm25|regex))$/, { message: "must be 'custom' or a dated Anthropic tool type such as 'web_search_20250305'", abort: true }),
    // A toolset (browser_toolset_20260801, computer_toolset_20260801) carries none.
    name: z.string().min(1).optional(),
  })
  .catchall(z.unknown());
/** A tool's settings in an MCP toolset: `defer_loading` is accepted and has no effect (no tool search here). */
const mcpToolConfigSchema = z.object({ enabled: z.boolean().optional(), defer_loading: z.boolean().optional() }).strict();

/** The MCP connector's newer shape (beta `mcp-client-2025-11-20`): which tools of an `mcp_servers` entry to offer. */
const mcpToolsetSchema = z
  .object({
    type: z.literal('mcp_toolset'),
    mcp_server_name: z.string().min(1),
    default_config: mcpToolConfigSchema.nullable().optional(),
    configs: z.record(z.string(), mcpToolConfigSchema).nullable().optional(),
    cache_control: cacheControlSchema.nullable().optional(),
    // A listing pinned from an earlier answer: accepted; the gateway lists the server's tools itself.
    tools: z.array(z.object({ name: z.string(), input_schema: z.record(z.string(), z.unknown()), description: z.string().nullable().optional() }).strict()).nullable().optional(),
  })
  .strict();

export type ServerToolParam = z.infer<typeof serverToolSchema>;
export type CustomToolParam = z.infer<typeof toolSchema>;
export type McpToolsetParam = z.infer<typeof mcpToolsetSchema>;
type ToolParam = CustomToolParam | ServerToolParam | McpToolsetParam;
export const isMcpToolset = (tool: ToolParam): tool is McpToolsetParam => tool.type === 'mcp_toolset';
export const isCustomTool = (tool: ToolParam): tool is CustomToolParam => tool.type == null || tool.type === 'custom';
/** Anthropic's own tools: whatever is neither a custom tool nor an MCP toolset. */
export const isServerTool = (tool: ToolParam): tool is ServerToolParam => !isCustomTool(tool) && !isMcpToolset(tool);

const toolChoiceSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('auto'), disable_parallel_tool_use: z.boolean().optional() }).strict(),
  z.object({ type: z.literal('any'), disable_parallel_tool_use: z.boolean().optional() }).strict(),
  z.object({ type: z.literal('tool'), name: z.string().min(1), disable_parallel_tool_use: z.boolean().optional() }).strict(),
  z.object({ type: z.literal('none') }).strict(),
]);

// `updates` is read as `summarized`; block_binding (Anthropic's check of thinking blocks sent
// back) is accepted and its defaults apply: thinking blocks go back exactly as they came.
const thinkingDisplay = z.enum(['summarized', 'omitted', 'updates']).nullable().optional();
const blockBinding = z.object({ prefix_mismatch_behavior: z.enum(['error', 'drop_block']).nullable().optional() }).strict().nullable().optional();

const thinkingSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('enabled'),
      budget_tokens: z.number().int().min(1024, 'must be at least 1024'),
      display: thinkingDisplay,
      block_binding: blockBinding,
    })
    .strict(),
  z.object({ type: z.literal('disabled') }).strict(),
  // Thinking off, with the short progress notes a model writes between tool calls as thinking blocks.
  z.object({ type: z.literal('between_tools') }).strict(),
  z.object({ type: z.literal('adaptive'), display: thinkingDisplay, block_binding: blockBinding }).strict(),
]);

const jsonSchemaFormat = z.object({ type: z.literal('json_schema'), schema: z.record(z.string(), z.unknown()) }).strict();

const outputConfigSchema = z
  .object({
    format: jsonSchemaFormat.nullable().optional(),
    effort: z.enum(['low', 'medium', 'high', 'xhigh', 'max']).nullable().optional(),
    // The beta's budget across contexts: passed to Anthropic (field-policy.ts), advisory elsewhere.
    task_budget: z.object({ type: z.literal('tokens'), total: z.number().int().min(1), remaining: z.number().int().min(0).nullable().optional() }).strict().nullable().optional(),
  })
  .strict();

/** The deprecated `response_format`: Anthropic's json_schema shape, or OpenAI-style text/json_object. */
const responseFormatSchema = z.discriminatedUnion('type', [
  jsonSchemaFormat,
  z.object({ type: z.literal('json_object') }).strict(),
  z.object({ type: z.literal('text') }).strict(),
]);

const mcpServerSchema = z
  .object({
    type: z.literal('url'),
    url: z.string().url(),
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of a-z, A-Z, 0-9, underscores and dashes'),
    authorization_token: z.string().nullable().optional(),
    tool_configuration: z
      .object({ enabled: z.boolean().nullable().optional(), allowed_tools: z.array(z.string()).nullable().optional() })
      .strict()
      .nullable()
      .optional(),
  })
  .strict();

export const messagesRequestSchema = z
  .object({
    model: z.string().min(1).default('default'),
    messages: z.array(messageSchema).min(1),
    // 0: warm Anthropic's prompt cache without an answer (field-policy.ts refuses it elsewhere).
    max_tokens: z.number().int().min(0),
    system: systemSchema.optional(),
    tools: z.array(z.union([toolSchema, mcpToolsetSchema, serverToolSchema])).optional(),
    thinking: thinkingSchema.optional(),
    tool_choice: toolChoiceSchema.optional(),
    output_config: outputConfigSchema.optional(),
    cache_control: cacheControlSchema.nullable().optional(),
    stream: z.boolean().optional(),
    tool_context: z.array(z.record(z.string(), z.unknown())).optional(),
    mcp_servers: z.array(mcpServerSchema).optional(),
    // An id, or {id, skills} (the skills to load into it).
    container: z
      .union([
        z.string(),
        z
          .object({
            id: z.string().nullable().optional(),
            skills: z.array(z.object({ skill_id: z.string().min(1), type: z.enum(['anthropic', 'custom']), version: z.string().optional() }).strict()).nullable().optional(),
          })
          .strict(),
      ])
      .nullable()
      .optional(),
    // Anthropic's newer fields: speed passes to an Anthropic upstream; diagnostics is refused (field-policy.ts).
    speed: z.enum(['standard', 'fast']).nullable().optional(),
    // Anthropic's billing and refusal-retry credit (beta): passed to it, refused elsewhere (field-policy.ts).
    billing_policy: z.object({ type: z.literal('billing_policy'), bill_to: z.enum(['self', 'user_profile']).optional() }).strict().nullable().optional(),
    fallback_credit_token: z
      .union([z.string().min(1), z.object({ token: z.string().min(1), mode: z.enum(['strict', 'best_effort']).optional() }).strict()])
      .nullable()
      .optional(),
    diagnostics: z.object({ previous_message_id: z.string().min(1).nullable().optional() }).passthrough().nullable().optional(),
    // Message threads (beta): held by POST /v1/messages (threads.ts), refused elsewhere (field-policy.ts).
    thread: z
      .discriminatedUnion('type', [
        z.object({ type: z.literal('create') }).strict(),
        z.object({ type: z.literal('continue'), previous_message_id: z.string().min(1) }).strict(),
      ])
      .nullable()
      .optional(),
    response_format: responseFormatSchema.optional(),
    // A compaction request (beta): compaction.ts.
    compaction: z.object({ type: z.literal('summarize'), instructions: z.string().nullable().optional() }).strict().nullable().optional(),
    // Server-side fallback on a refusal (beta server-side-fallback-2026-06-01): fallbacks.ts.
    fallbacks: z
      .union([
        z.literal('default'),
        z
          .array(
            z
              .object({
                model: z.string().min(1),
                max_tokens: z.number().int().min(1).nullable().optional(),
                thinking: thinkingSchema.nullable().optional(),
                output_config: outputConfigSchema.nullable().optional(),
                speed: z.enum(['standard', 'fast']).nullable().optional(),
              })
              .strict(),
          )
          .min(1)
          .max(3),
      ])
      .nullable()
      .optional(),
    // Anthropic's own deprecated name for output_config.format (the SDKs rewrite it; raw callers may not).
    output_format: jsonSchemaFormat.nullable().optional(),
    priority: z.number().int().optional(),
    seed: z.number().int().optional(),
    min_p: z.number().min(0).max(1).optional(),
    top_p: z.number().min(0).max(1).optional(),
    temperature: z.number().min(0).max(1).optional(),
    top_k: z.number().int().min(0).optional(),
    repetition_penalty: z.number().gt(0).max(2).optional(),
    presence_penalty: z.number().min(-2).max(2).optional(),
    frequency_penalty: z.number().min(-2).max(2).optional(),
    stop_sequences: z.array(z.string().min(1)).optional(),
    metadata: z.object({ user_id: z.string().max(256).nullable().optional() }).strict().optional(),
    service_tier: z.enum(['auto', 'standard_only']).optional(),
    inference_geo: z.string().min(1).nullable().optional(),
    correlation_id: z.string().regex(/^[\x21-\x7e]{1,128}$/, 'must be 1-128 printable ASCII characters').optional(),
    maximum_loaded_skills: z.number().int().min(1).optional(),
    context_management: z.unknown().optional(),
  })
  .strict();

/** POST /v1/messages/count_tokens: the same body, `max_tokens` optional (described in /openapi.json). */
export const countTokensRequestSchema = messagesRequestSchema.partial({ max_tokens: true });

export type MessagesRequest = z.infer<typeof messagesRequestSchema>;
export type MessagesMessage = z.infer<typeof messageSchema>;
export type MessagesContentBlock = z.infer<typeof contentBlockSchema>;
export type McpServerParam = z.infer<typeof mcpServerSchema>;
