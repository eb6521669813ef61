// The wire schema of POST /v1/chat/completions: OpenAI's fields plus seed 004's extensions.
// Unknown fields are refused (as OpenAI does) so nothing is silently dropped.

import { z } from 'zod';

const nameSchema = z.string().regex(/^[A-Za-z0-9_]{1,64}$/, 'must be 1-64 characters of a-z, A-Z, 0-9 and underscores');

/** OpenRouter's convention for Anthropic prompt caching through the OpenAI format: a breakpoint after this text. */
const cacheControlSchema = z.object({ type: z.literal('ephemeral'), ttl: z.enum(['5m', '1h']).optional() }).strict();
/** OpenAI's own explicit breakpoint (openai SDK 6.4x): the end of a reusable prompt prefix. */
const breakpointSchema = z.object({ mode: z.literal('explicit') }).strict();
const textPart = z
  .object({ type: z.literal('text'), text: z.string(), cache_control: cacheControlSchema.optional(), prompt_cache_breakpoint: breakpointSchema.optional() })
  .strict();
const imagePart = z
  .object({
    type: z.literal('image_url'),
    image_url: z.object({ url: z.string().min(1), detail: z.enum(['auto', 'low', 'high']).optional() }).strict(),
    prompt_cache_breakpoint: breakpointSchema.optional(),
  })
  .strict();
const audioPart = z.object({ type: z.literal('input_audio'), input_audio: z.unknown(), prompt_cache_breakpoint: breakpointSchema.optional() }).strict();
const filePart = z
  .object({
    type: z.literal('file'),
    file: z.object({ file_data: z.string().optional(), file_id: z.string().optional(), filename: z.string().optional() }).strict(),
    prompt_cache_breakpoint: breakpointSchema.optional(),
  })
  .strict();
const refusalPart = z.object({ type: z.literal('refusal'), refusal: z.string() }).strict();

const userContentPart = z.discriminatedUnion('type', [textPart, imagePart, audioPart, filePart]);

const toolCallSchema = z.discriminatedUnion('type', [
  z
    .object({
      id: z.string().min(1),
      type: z.literal('function'),
      // parsed_arguments: what the SDK's parse helpers and tool runner add to a call they parsed,
      // and send back with the transcript; the arguments string is what counts.
      function: z.object({ name: z.string().min(1), arguments: z.string(), parsed_arguments: z.unknown().optional() }).strict(),
    })
    .strict(),
  // A custom tool's call (refused with a reason in parse-request.ts, as custom tools are).
  z.object({ id: z.string().min(1), type: z.literal('custom'), custom: z.object({ name: z.string(), input: z.string() }).strict() }).strict(),
]);

/** One of OpenRouter's reasoning_details entries (format and id are accepted and ignored). */
const detailCommon = { index: z.number().int().nonnegative().optional(), format: z.string().nullable().optional(), id: z.string().nullable().optional() };
const reasoningDetailSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('reasoning.text'), text: z.string(), signature: z.string().nullable().optional(), ...detailCommon }).strict(),
  z.object({ type: z.literal('reasoning.encrypted'), data: z.string().min(1), ...detailCommon }).strict(),
  z.object({ type: z.literal('reasoning.summary'), summary: z.string(), ...detailCommon }).strict(),
]);

const messageSchema = z.discriminatedUnion('role', [
  z.object({ role: z.literal('system'), content: z.union([z.string(), z.array(textPart)]), name: nameSchema.optional() }).strict(),
  z.object({ role: z.literal('developer'), content: z.union([z.string(), z.array(textPart)]), name: nameSchema.optional() }).strict(),
  z.object({ role: z.literal('user'), content: z.union([z.string(), z.array(userContentPart).min(1)]), name: nameSchema.optional() }).strict(),
  z
    .object({
      role: z.literal('assistant'),
      content: z.union([z.string(), z.array(z.discriminatedUnion('type', [textPart, refusalPart])), z.null()]).optional(),
      name: nameSchema.optional(),
      tool_calls: z.array(toolCallSchema).optional(),
      refusal: z.string().nullable().optional(),
      /** Reasoning text sent back from an earlier turn (OpenRouter convention). */
      reasoning: z.string().nullable().optional(),
      /** Reasoning blocks sent back verbatim (OpenRouter's reasoning_details; signatures kept). */
      reasoning_details: z.array(reasoningDetailSchema).nullable().optional(),
      // What OpenAI's responses carry and clients send back with the message as they got it
      // (`messages.push(completion.choices[0].message)`): URL citations, and the empty audio and
      // deprecated function_call. Citations are the answer's metadata, not its text.
      annotations: z.array(z.unknown()).nullable().optional(),
      /** The SDK's `parse` helpers' parsed content, echoed back with the message; the text counts. */
      parsed: z.unknown().optional(),
      // Non-null (stored audio, a deprecated function call) they are refused with a reason.
      audio: z.object({ id: z.string() }).strict().nullable().optional(),
      function_call: z.object({ name: z.string(), arguments: z.string() }).strict().nullable().optional(),
    })
    .strict(),
  z.object({ role: z.literal('tool'), content: z.union([z.string(), z.array(textPart)]), tool_call_id: z.string().min(1) }).strict(),
  // The deprecated functions API's answer (refused with a reason in parse-request.ts).
  z.object({ role: z.literal('function'), name: z.string(), content: z.string().nullable() }).strict(),
]);

const functionToolSchema = z
  .object({
    type: z.literal('function'),
    function: z
      .object({
        name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of a-z, A-Z, 0-9, underscores and dashes'),
        description: z.string().optional(),
        parameters: z.record(z.string(), z.unknown()).optional(),
        strict: z.boolean().nullable().optional(),
      })
      .strict(),
  })
  .strict();

/** OpenAI's custom tools (free-form input, optionally under a Lark or regex grammar): refused with a reason in parse-request.ts. */
const customToolSchema = z.object({ type: z.literal('custom'), custom: z.record(z.string(), z.unknown()) }).strict();

const toolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: z.string().min(1) }).strict() }).strict(),
  // The tools the model may call this turn, out of all those in `tools` (which stay in the prompt).
  z
    .object({
      type: z.literal('allowed_tools'),
      allowed_tools: z.object({ mode: z.enum(['auto', 'required']), tools: z.array(z.record(z.string(), z.unknown())).min(1) }).strict(),
    })
    .strict(),
  z.object({ type: z.literal('custom'), custom: z.object({ name: z.string().min(1) }).strict() }).strict(),
]);

const responseFormatSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }).strict(),
  z.object({ type: z.literal('json_object') }).strict(),
  z
    .object({
      type: z.literal('json_schema'),
      json_schema: z
        .object({
          name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
          description: z.string().optional(),
          schema: z.record(z.string(), z.unknown()).optional(),
          strict: z.boolean().nullable().optional(),
        })
        .strict(),
    })
    .strict(),
]);

const reasoningSchema = z
  .object({
    effort: z.enum(['xhigh', 'high', 'medium', 'low', 'minimal', 'none']).optional(),
    max_tokens: z.number().int().positive().optional(),
    exclude: z.boolean().optional(),
    enabled: z.boolean().optional(),
  })
  .strict();

/**
 * OpenAI request fields that no provider here can honour, and why: accepted by the schema, then
 * refused by parse-request.ts with a 400 naming the field and giving this reason.
 */
export const UNSUPPORTED_FIELDS = {
  audio: 'audio output is not supported',
  modalities: 'only text output is supported; leave modalities out or send ["text"]',
  prediction: 'predicted outputs are not supported',
  web_search_options: 'web search is not supported; offer a search tool instead',
  functions: 'the deprecated functions field is not supported; send tools',
  function_call: 'the deprecated function_call field is not supported; send tool_choice',
  prompt_cache_retention: "only in-memory retention (the default) is supported; 24h retention is OpenAI's own",
  moderation: 'moderated completions are not supported',
} as const;

const unsupportedFieldSchemas = Object.fromEntries(Object.keys(UNSUPPORTED_FIELDS).map((field) => [field, z.unknown().optional()])) as {
  [K in keyof typeof UNSUPPORTED_FIELDS]: z.ZodOptional<z.ZodUnknown>;
};

export const chatCompletionRequestSchema = z
  .object({
    model: z.string().min(1),
    messages: z.array(messageSchema).min(1),
    max_tokens: z.number().int().min(1).nullable().optional(),
    max_completion_tokens: z.number().int().min(1).nullable().optional(),
    prompt_truncate_len: z.number().int().min(1).optional(),
    temperature: z.number().min(0).max(2).nullable().optional(),
    top_p: z.number().min(0).max(1).nullable().optional(),
    top_k: z.number().int().min(0).nullable().optional(),
    min_p: z.number().min(0).max(1).nullable().optional(),
    seed: z.number().int().nullable().optional(),
    stop: z.union([z.string(), z.array(z.string().min(1)).max(4)]).nullable().optional(),
    presence_penalty: z.number().min(-2).max(2).nullable().optional(),
    logit_bias: z.record(z.string().regex(/^\d+$/, 'must be a token id'), z.number().min(-100).max(100)).nullable().optional(),
    frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
    repetition_penalty: z.number().gt(0).max(2).nullable().optional(),
    n: z.number().int().min(1).max(8).nullable().optional(),
    stream: z.boolean().nullable().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional(), include_obfuscation: z.boolean().optional() }).strict().nullable().optional(),
    tools: z.array(z.discriminatedUnion('type', [functionToolSchema, customToolSchema])).optional(),
    tool_choice: toolChoiceSchema.optional(),
    parallel_tool_calls: z.boolean().optional(),
    response_format: responseFormatSchema.optional(),
    reasoning: reasoningSchema.optional(),
    verbosity: z.enum(['low', 'medium', 'high']).nullable().optional(),
    reasoning_effort: z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max']).nullable().optional(),
    logprobs: z.boolean().nullable().optional(),
    top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
    user: z.string().optional(),
    safety_identifier: z.string().nullable().optional(),
    prompt_cache_key: z.string().nullable().optional(),
    prompt_cache_options: z
      .object({ mode: z.enum(['implicit', 'explicit']).optional(), ttl: z.literal('30m').optional() })
      .strict()
      .nullable()
      .optional(),
    // OpenAI's documented limits: 16 pairs, keys of at most 64 characters, values of at most 512.
    metadata: z
      .record(z.string(), z.string())
      .superRefine((pairs, ctx) => {
        const keys = Object.keys(pairs);
        if (keys.length > 16) ctx.addIssue({ code: 'custom', message: `expected at most 16 key-value pairs, got ${keys.length}` });
        for (const key of keys) {
          if (key.length > 64) ctx.addIssue({ code: 'custom', path: [key], message: `keys are at most 64 characters, this one has ${key.length}` });
          else if (pairs[key]!.length > 512) ctx.addIssue({ code: 'custom', path: [key], message: `values are at most 512 characters, this one has ${pairs[key]!.length}` });
        }
      })
      .nullable()
      .optional(),
    store: z.boolean().nullable().optional(),
    service_tier: z.string().nullable().optional(),
    // Fields of OpenAI's API that Switchboard refuses with a message of their own (parse-request.ts),
    // rather than as unknown arguments.
    ...unsupportedFieldSchemas,
  })
  .strict();

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;
export type ChatCompletionMessage = z.infer<typeof messageSchema>;
