// GET /v1/models and GET /v1/models/{id} for the Anthropic SDK (models.list, models.retrieve):
// Anthropic's ModelInfo objects and its cursor pages (limit, after_id, before_id → data,
// has_more, first_id, last_id). Served to requests carrying `anthropic-version`
// (server/client-constraint.ts); OpenAI's clients get OpenAI's list from the same paths.

import type { FastifyInstance } from 'fastify';
import { badRequest } from '../../core/errors.js';
import { ANTHROPIC_CLIENT } from '../../server/client-constraint.js';
import type { ServerContext } from '../../server/context.js';
import { listedModel, listedModels, type ListedModel } from '../../server/model-list.js';

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 1000;

interface ListQuery {
  limit?: string;
  after_id?: string;
  before_id?: string;
}

function modelInfo({ id, model }: ListedModel) {
  return {
    type: 'model',
    id,
    display_name: id,
    created_at: new Date(model.created * 1000).toISOString(),
    capabilities: null,
    deprecated_at: null,
    lifecycle: 'active',
    line: null,
    max_input_tokens: model.contextLength,
    max_tokens: null,
    retires_at: null,
  };
}

function pageLimit(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_LIMIT;
  const limit = Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw badRequest(`limit must be an integer from 1 to ${MAX_LIMIT}`, 'limit');
  return limit;
}

/** One page of `items` as Anthropic pages lists: after a cursor, before one, or from the start. */
function page<T extends { id: string }>(items: T[], query: ListQuery) {
  const limit = pageLimit(query.limit);
  if (query.after_id !== undefined && query.before_id !== undefined) throw badRequest('Give after_id or before_id, not both', 'before_id');
  const cursor = query.after_id ?? query.before_id;
  const at = cursor === undefined ? -1 : items.findIndex((item) => item.id === cursor);
  if (cursor !== undefined && at < 0) throw badRequest(`No model '${cursor}' to page from`, query.after_id !== undefined ? 'after_id' : 'before_id');
  let data: T[];
  let hasMore: boolean;
  if (query.before_id !== undefined) {
    data = items.slice(Math.max(0, at - limit), at);
    hasMore = at - limit > 0;
  } else {
    data = items.slice(at + 1, at + 1 + limit);
    hasMore = at + 1 + limit < items.length;
  }
  return { data, has_more: hasMore, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}

export function registerModelsRoutes(app: FastifyInstance, context: ServerContext): void {
  app.get<{ Querystring: ListQuery }>('/v1/models', { constraints: ANTHROPIC_CLIENT }, async (request) =>
    page(listedModels(context, request.auth).map(modelInfo), request.query),
  );
  app.get<{ Params: { id: string } }>('/v1/models/:id', { constraints: ANTHROPIC_CLIENT }, async (request) =>
    modelInfo(listedModel(context, request.auth, request.params.id)),
  );
}
