// One path from a wire body to a checked ChatRequest, shared by /v1/messages, the async submit
// (so a bad body is a 400 at once) and the async run itself.

import { documentsAsText } from '../../core/documents.js';
import { badRequest } from '../../core/errors.js';
import type { Gateway } from '../../core/gateway.js';
import type { ChatRequest } from '../../core/types.js';
import { parseBody } from '../../core/validation.js';
import type { MessagesConfig } from './config.js';
import { applyContextManagement, promptReaches } from './context-management.js';
import { afterCompaction, checkCompaction, compactionRequest } from './compaction.js';
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
  /** Autocompact that goes on to answer: the summary's request, then the answer's from the summary (start.ts). */
  autocompact?: { summary: ChatRequest; answer: (summary: string | null) => ChatRequest };
}

/**
 * `betas`: the request's `anthropic-beta` header, for an Anthropic upstream (field-policy.ts).
 * `counting`: for count_tokens, which counts the conversation as sent (no autocompact).
 */
export async function prepareMessages(raw: unknown, gateway: Gateway, config: MessagesConfig, betas: string[] = [], counting = false): Promise<PreparedMessages> {
  const body = parseBody(messagesRequestSchema, raw);
  checkCompaction(body);
  const parsed = await parseMessagesRequest(body);
  const info = applyFieldPolicy(body, parsed, gateway, betas);
  const managed = info.contextManagement ? await applyContextManagement(parsed, info.contextManagement, gateway) : parsed;
  // Documents become text for models that cannot read them (as Gateway.chat does), before the check.
  const asked = await documentsAsText(managed, info.model);
  let request = info.compaction ? compactionRequest(asked, info.compaction.instructions) : asked;
  let autocompact: PreparedMessages['autocompact'];
  const compact = info.contextManagement?.compact;
  if (compact && !counting) {
    // Two calls in one response here; with the tool loop or fallbacks they would be many more.
    if (body.mcp_servers?.length) throw badRequest("context_management's compact_20260112 edit cannot be combined with 'mcp_servers' here", 'context_management');
    if (body.fallbacks != null) throw badRequest("context_management's compact_20260112 edit cannot be combined with 'fallbacks' here", 'context_management');
    if (await promptReaches(gateway, asked, compact.trigger)) {
      if (compact.pause) {
        request = compactionRequest(asked, compact.instructions);
        info.compaction = { instructions: compact.instructions };
      } else {
        autocompact = { summary: compactionRequest(asked, compact.instructions), answer: (summary) => afterCompaction(asked, summary) };
      }
    }
  }
  gateway.checkRequest(request, info.model);
  await checkMcpTargets(body, config);
  const fallbacks = await prepareFallbacks(raw as Record<string, unknown>, body, info.model, gateway, (hop) => prepareMessages(hop, gateway, config, betas));
  return { body, request, info, fallbacks, ...(autocompact ? { autocompact } : {}) };
}
