// Seed 003 fields whose effect depends on the provider that serves the model: each is passed to
// an Anthropic upstream as is, honoured here, or refused with a 400 naming it. docs/messages.md
// says what each one does.

import { badRequest } from '../../core/errors.js';
import type { Gateway } from '../../core/gateway.js';
import type { ResolvedModel } from '../../core/models.js';
import type { ChatRequest } from '../../core/types.js';
import type { ContextManagement } from './context-management.js';
import { parseContextManagement } from './context-management.js';
import type { MessagesRequest } from './schema.js';
import { threadUnsupported } from './threads.js';

/** What the dialect keeps about a request beyond the ChatRequest (recorded, echoed, queued). */
export interface MessagesRequestInfo {
  model: ResolvedModel;
  priority: number;
  correlationId?: string;
  userId?: string;
  serviceTier?: string;
  inferenceGeo?: string;
  /** display: 'omitted' — thinking blocks keep their signature but not their text. */
  omitThinking: boolean;
  /** Context edits this gateway applies itself (models not served by Anthropic). */
  contextManagement?: ContextManagement;
  /** A compaction request (compaction.ts): the response is the conversation's summary. */
  compaction?: { instructions?: string | null };
}

export function servedOnlyByAnthropic(model: ResolvedModel): boolean {
  return model.deployments.every((d) => d.provider === 'anthropic');
}

/** The values of an `anthropic-beta` header (comma-separated, as the SDK joins its `betas`). */
export function betasOf(header: string | string[] | undefined): string[] {
  const values = Array.isArray(header) ? header : header ? [header] : [];
  return values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

export function applyFieldPolicy(body: MessagesRequest, request: ChatRequest, gateway: Gateway, betas: string[] = []): MessagesRequestInfo {
  const model = gateway.registry.resolve(body.model);
  const anthropic = servedOnlyByAnthropic(model);
  const caps = gateway.capabilities(model.deployments[0]!);
  const passThrough: Record<string, unknown> = {};

  if (request.reasoning?.enabled && !caps.reasoning) {
    throw badRequest(`The model '${model.id}' cannot think: 'thinking' needs a provider with reasoning support`, 'thinking', 'unsupported_parameter');
  }
  if (body.max_tokens === 0 && !anthropic) {
    throw badRequest(`max_tokens 0 (filling the prompt cache without an answer) needs a model served by the Anthropic API; '${model.id}' is not`, 'max_tokens', 'unsupported_parameter');
  }
  if (body.container != null) {
    if (!anthropic) throw badRequest(`'container' needs a model served by the Anthropic API; '${model.id}' is not`, 'container', 'unsupported_parameter');
    passThrough.container = body.container;
  }
  // `speed: standard` is what every provider does; `fast` needs Anthropic.
  if (body.speed === 'fast') {
    if (!anthropic) throw badRequest(`'speed: fast' needs a model served by the Anthropic API; '${model.id}' is not`, 'speed', 'unsupported_parameter');
    passThrough.speed = body.speed;
  }
  // Billing the customer behind a user profile, and a refusal's credit, are Anthropic's own;
  // billing yourself is what every provider here does.
  if (body.billing_policy != null && (anthropic || body.billing_policy.bill_to === 'user_profile')) {
    if (!anthropic) throw badRequest(`'billing_policy' with bill_to 'user_profile' needs a model served by the Anthropic API; '${model.id}' is not`, 'billing_policy', 'unsupported_parameter');
    passThrough.billing_policy = body.billing_policy;
  }
  if (body.fallback_credit_token != null) {
    if (!anthropic) throw badRequest(`'fallback_credit_token' needs a model served by the Anthropic API; '${model.id}' is not`, 'fallback_credit_token', 'unsupported_parameter');
    passThrough.fallback_credit_token = body.fallback_credit_token;
  }
  if (body.output_config?.task_budget != null && anthropic) passThrough.output_config = { task_budget: body.output_config.task_budget };
  if (body.diagnostics != null) {
    // Anthropic would compare against its own message id, and clients hold the gateway's.
    throw badRequest("'diagnostics' is not supported: message ids here are the gateway's own, so previous_message_id cannot name an Anthropic request", 'diagnostics', 'unsupported_parameter');
  }
  if (body.thread != null) {
    // POST /v1/messages holds threads (threads.ts) and removes the field before this point; the
    // async runs and count_tokens do not.
    throw threadUnsupported("Message threads are supported on POST /v1/messages only: send the full conversation without 'thread'", 'thread');
  }
  let contextManagement: ContextManagement | undefined;
  if (body.context_management != null) {
    // Anthropic applies its own (and knows edit types this gateway may not); elsewhere it is applied here.
    if (anthropic) passThrough.context_management = body.context_management;
    else contextManagement = parseContextManagement(body.context_management);
  }
  if (body.inference_geo != null) {
    const regions = model.deployments.map((d) => d.region).filter((r): r is string => !!r);
    if (regions.length && !regions.includes(body.inference_geo)) {
      throw badRequest(`The model '${model.id}' is not served in '${body.inference_geo}' (regions: ${regions.join(', ')})`, 'inference_geo', 'unsupported_region');
    }
    if (anthropic) passThrough.inference_geo = body.inference_geo;
  }
  if (body.mcp_servers?.length && !caps.tools) {
    throw badRequest(`The model '${model.id}' does not support tools, so it cannot use 'mcp_servers'`, 'mcp_servers', 'unsupported_parameter');
  }
  if (body.tool_context?.length && !body.mcp_servers?.length) {
    throw badRequest("'tool_context' is handed to tools the server executes; it needs 'mcp_servers'", 'tool_context');
  }
  if (anthropic) {
    if (body.thinking?.type === 'between_tools') passThrough.thinking = body.thinking;
    if (body.cache_control) passThrough.cache_control = body.cache_control;
    if (body.service_tier) passThrough.service_tier = body.service_tier;
    if (body.metadata?.user_id) passThrough.metadata = { user_id: body.metadata.user_id };
  }
  if (betas.length) request.anthropicBetas = betas;
  if (Object.keys(passThrough).length) request.providerOptions = { ...request.providerOptions, anthropic: passThrough };

  return {
    model,
    priority: body.priority ?? 0,
    correlationId: body.correlation_id,
    userId: body.metadata?.user_id ?? undefined,
    serviceTier: body.service_tier,
    inferenceGeo: body.inference_geo ?? undefined,
    omitThinking: body.thinking != null && 'display' in body.thinking && body.thinking.display === 'omitted',
    contextManagement,
    ...(body.compaction ? { compaction: { instructions: body.compaction.instructions } } : {}),
  };
}
