// One JSON log line per HTTP request, written when the response closes (finished or cut), with
// what an operator needs: who, which route, what it cost, how long it took. Never headers,
// bodies, query strings or keys.

import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.js';
import { httpInFlight } from '../metrics.js';
import { chargedSummary } from '../../core/gateway.js';
import { addUsage, type Usage } from '../../core/types.js';

interface ChatFacts {
  dialect: string;
  model?: string;
  provider?: string;
  correlationId?: string;
  errorKind?: string;
  usage: Usage;
  cost: number;
  ttftMs?: number;
}

/**
 * The chat facts of one HTTP request: its own call, or the calls it made under `<id>-<n>` (a
 * dialect that fans out to several providers, fallbacks, tool rounds), summed.
 */
function joinChats(parts: ChatFacts[]): ChatFacts | undefined {
  if (parts.length <= 1) return parts[0];
  const join = (values: Array<string | undefined>) => [...new Set(values.filter((v): v is string => !!v))].join(',') || undefined;
  const ttfts = parts.flatMap((p) => (p.ttftMs === undefined ? [] : [p.ttftMs]));
  return {
    dialect: parts[0]!.dialect,
    model: join(parts.map((p) => p.model)),
    provider: join(parts.map((p) => p.provider)),
    correlationId: parts[0]!.correlationId,
    errorKind: join(parts.map((p) => p.errorKind)),
    usage: parts.map((p) => p.usage).reduce(addUsage),
    cost: parts.reduce((n, p) => n + p.cost, 0),
    ttftMs: ttfts.length ? Math.min(...ttfts) : undefined,
  };
}

/** The open HTTP request a call belongs to: its own id, or the id its `-<n>` suffixes extend. */
function owner<T>(open: Map<string, T>, callId: string): T | undefined {
  for (let id = callId; ; ) {
    const found = open.get(id);
    if (found) return found;
    const dash = id.lastIndexOf('-');
    if (dash <= 0) return undefined;
    id = id.slice(0, dash);
  }
}

/** The line's chat fields: the token details only where there were any, to keep lines short. */
function chatFields({ usage, ...facts }: ChatFacts): Record<string, unknown> {
  const fields: Record<string, unknown> = { ...facts, inputTokens: usage.inputTokens, outputTokens: usage.outputTokens };
  if (usage.cacheReadTokens) fields.cacheReadTokens = usage.cacheReadTokens;
  if (usage.cacheWriteTokens) fields.cacheWriteTokens = usage.cacheWriteTokens;
  if (usage.reasoningTokens) fields.reasoningTokens = usage.reasoningTokens;
  if (usage.serverToolUse && Object.keys(usage.serverToolUse).length > 0) fields.serverToolUse = usage.serverToolUse;
  return fields;
}

export function attachRequestLogging(app: FastifyInstance, context: ServerContext): void {
  // One entry per HTTP request still open: a call that ends after its response closed (a client
  // gone), or that has no HTTP request (an async run), is not kept for a line already written.
  const open = new Map<string, ChatFacts[]>();
  context.gateway.onChatDone(({ context: call, model, provider, summary: answered, ttftMs, setAside }) => {
    const chats = owner(open, call.requestId);
    if (!chats) return;
    const summary = chargedSummary(answered, setAside);
    chats.push({
      dialect: call.dialect,
      model,
      provider,
      correlationId: call.correlationId,
      errorKind: summary.errorKind,
      usage: summary.usage,
      cost: summary.cost,
      ttftMs: ttftMs === undefined ? undefined : +ttftMs.toFixed(2),
    });
  });

  app.addHook('onRequest', async (request, reply) => {
    httpInFlight.inc();
    const id = String(request.id);
    open.set(id, []);
    reply.raw.once('close', () => {
      httpInFlight.dec();
      const chat = joinChats(open.get(id)!);
      open.delete(id);
      // The line's object is not even built when info lines are off.
      if (!context.logger.isLevelEnabled('info')) return;
      context.logger.info(
        {
          reqId: id,
          method: request.method,
          route: request.routeOptions.url ?? null,
          url: request.url.split('?')[0],
          status: reply.raw.statusCode,
          ms: +(performance.now() - request.arrivedAt).toFixed(2),
          completed: reply.raw.writableFinished,
          org: request.auth?.organisation,
          keyId: request.auth?.key?.id,
          auth: request.auth?.mode,
          ...(chat ? chatFields(chat) : {}),
        },
        'request',
      );
    });
  });
}
