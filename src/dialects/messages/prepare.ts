// One path from a wire body to a checked ChatRequest, shared by /v1/messages, the async submit
// (so a bad body is a 400 at once) and the async run itself.

import { documentsAsText } from '../../core/documents.js';
import type { Gateway } from '../../core/gateway.js';
import type { ChatRequest } from '../../core/types.js';
import { parseBody } from '../../core/validation.js';
import type { MessagesConfig } from './config.js';
import { applyContextManagement } from './context-management.js';
import { checkCompaction, compactionRequest } from './compaction.js';
import { prepareFallbacks } from './fallbacks.js';
import type { MessagesRequestInfo } from './field-policy.js';
import { applyFieldPolicy } from './field-policy.js';
import { checkMcpTargets } from './mcp-servers.js';
import { parseMessagesRequest } from './parse-request.js';
import type { MessagesRequest } from './schema.js';
import { messagesRequestSchema } from './schema.js';

export interface PreparedMessages {
  body: MessagesRequest;
  request: ChatRequest;
  info: MessagesRequestInfo;
  /** The fallback attempts of a request with `fallbacks` (fallbacks.ts), each checked as its own request. */
  fallbacks: PreparedMessages[];
}

/** `betas`: the request's `anthropic-beta` header, for an Anthropic upstream (field-policy.ts). */
export async function prepareMessages(raw: unknown, gateway: Gateway, config: MessagesConfig, betas: string[] = []): Promise<PreparedMessages> {
  const body = parseBody(messagesRequestSchema, raw);
  checkCompaction(body);
  const parsed = await parseMessagesRequest(body);
  const info = applyFieldPolicy(body, parsed, gateway, betas);
  const managed = info.contextManagement ? await applyContextManagement(parsed, info.contextManagement, gateway) : parsed;
  // Documents become text for models that cannot read them (as Gateway.chat does), before the check.
  const asked = await documentsAsText(managed, info.model);
  const request = info.compaction ? compactionRequest(asked, info.compaction.instructions) : asked;
  gateway.checkRequest(request, info.model);
  await checkMcpTargets(body, config);
  const fallbacks = await prepareFallbacks(raw as Record<string, unknown>, body, info.model, gateway, (hop) => prepareMessages(hop, gateway, config, betas));
  return { body, request, info, fallbacks };
}
