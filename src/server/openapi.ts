// GET /openapi.json: an OpenAPI 3.1 document of every route the app registered (collected by
// RouteCatalog), with request and response schemas generated from the zod schemas the handlers
// validate with (z.toJSONSchema). Built once, on the first request, when every route is known.

import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { chatCompletionRequestSchema } from '../dialects/openai/schema.js';
import type { CatalogRoute, RouteCatalog, RouteDoc } from './openapi-catalog.js';

type JsonObject = Record<string, unknown>;

/**
 * Descriptions of routes that do not carry `config.openapi` themselves: the dialects'. A dialect
 * schema module is loaded if it is there and its `*RequestSchema` export is used.
 */
interface KnownRoute {
  method: string;
  url: string | RegExp;
  doc: RouteDoc;
  /** Module (relative to this file) and export holding the request body schema. */
  bodyFrom?: { module: string; exportName: RegExp };
  /** The concrete paths a wildcard route serves, each described on its own. */
  expand?: Array<{ path: string; doc: RouteDoc }>;
}

/** Who served a chat request (docs/router.md), and what the caller's limits leave (docs/operations.md). */
const SERVED_BY = ['x-switchboard-provider', 'x-switchboard-model', 'x-switchboard-deployment', 'x-switchboard-attempts', 'x-switchboard-ttft-ms', 'x-switchboard-overhead-ms'];
const OPENAI_RATE_LIMITS = ['requests', 'tokens'].flatMap((d) => [`x-ratelimit-limit-${d}`, `x-ratelimit-remaining-${d}`, `x-ratelimit-reset-${d}`]);
const ANTHROPIC_RATE_LIMITS = ['requests', 'tokens'].flatMap((d) => [`anthropic-ratelimit-${d}-limit`, `anthropic-ratelimit-${d}-remaining`, `anthropic-ratelimit-${d}-reset`]);
const OPENAI_CHAT_HEADERS = [...SERVED_BY, ...OPENAI_RATE_LIMITS];
const MESSAGES_HEADERS = ['request-id', 'x-correlation-id', ...SERVED_BY, ...ANTHROPIC_RATE_LIMITS];

const RESPONSE_HEADER_DESCRIPTIONS: Record<string, string> = {
  'x-request-id': "The request's id (also the request log's row id)",
  'request-id': 'The request id, under the name the Anthropic SDK reads',
  'x-correlation-id': "The request body's correlation_id, echoed",
  'retry-after': 'Seconds to wait before retrying (429, 503)',
  'x-switchboard-provider': 'The provider that served the request',
  'x-switchboard-model': 'The model that served it (a fallback model when one took over)',
  'x-switchboard-deployment': 'The deployment that served it',
  'x-switchboard-attempts': 'Upstream attempts across retries and fallbacks',
  'x-switchboard-ttft-ms': 'Milliseconds from arrival to the first content',
  'x-switchboard-overhead-ms': "The gateway's own time: since arrival, minus the time spent waiting on upstreams",
  'x-switchboard-token-count': 'How the count was made: the upstream, the local tokenizer, or an estimate',
};

function responseHeaderDescription(name: string): string {
  if (RESPONSE_HEADER_DESCRIPTIONS[name]) return RESPONSE_HEADER_DESCRIPTIONS[name];
  return "What the caller's tightest rpm/tpm limit leaves (sent only with such a limit)";
}

const SESSION_HEADER = { name: 'X-Session-ID', description: 'Keeps the conversation on the server (1–128 characters of [A-Za-z0-9._:-]): the earlier turns of the session are placed before this request’s; read back with GET /v1/sessions/{id}' };
const ANTHROPIC_HEADERS = [
  { name: 'anthropic-version', description: "The Anthropic SDK's API version; on GET /v1/models it selects Anthropic's shapes" },
  { name: 'anthropic-beta', description: 'Beta flags, comma-separated; passed on to an Anthropic or Bedrock Claude upstream' },
];

const openAIChat: RouteDoc = {
  summary: 'Chat completion (OpenAI wire format); SSE when stream is true',
  tags: ['openai'],
  body: chatCompletionRequestSchema,
  produces: ['application/json', 'text/event-stream'],
  headers: [SESSION_HEADER],
  responseHeaders: OPENAI_CHAT_HEADERS,
};
const edenRules =
  'Rules the schema cannot say: `text` is required unless `tool_results` continue a tool call; `providers` must name at least one provider, each once; `fallback_providers` (at most 5) only with exactly one provider; a `tool` turn of `previous_history` needs `tool_call_id`.';
const modelsPageQuery = z.object({
  limit: z.number().int().min(1).max(1000).optional().describe('With anthropic-version: models per page (default 20)'),
  after_id: z.string().optional().describe('With anthropic-version: the page after this model id'),
  before_id: z.string().optional().describe('With anthropic-version: the page before this model id'),
});

const KNOWN_ROUTES: KnownRoute[] = [
  { method: 'POST', url: '/v1/chat/completions', doc: openAIChat },
  { method: 'POST', url: '/api/v3/inference/chat/completions', doc: { ...openAIChat, summary: 'Chat completion (seed alias of /v1/chat/completions; prompts trimmed to 1500 tokens by default)' } },
  { method: 'GET', url: '/v1/models', doc: { summary: "Every model id and alias the caller's key may use: OpenAI's list, or for a request with anthropic-version (the Anthropic SDK) Anthropic's ModelInfo page (limit, after_id, before_id)", tags: ['openai', 'messages'], headers: ANTHROPIC_HEADERS.slice(0, 1), query: modelsPageQuery } },
  { method: 'GET', url: '/v1/models/:id', doc: { summary: "One model by id or alias, in OpenAI's shape or (with anthropic-version) Anthropic's ModelInfo; 404 for a model the key may not use", tags: ['openai', 'messages'], headers: ANTHROPIC_HEADERS.slice(0, 1) } },
  { method: 'GET', url: '/v1/sessions/:id', doc: { summary: 'A server-side conversation kept by X-Session-ID', tags: ['openai'] } },
  { method: 'POST', url: /^\/api\/v3\/organizations\/[^/]+\/ai\/chat$/, doc: { summary: 'Organisation chat (buffered)', tags: ['organisation chat'], responseHeaders: OPENAI_CHAT_HEADERS }, bodyFrom: { module: '../dialects/org/schema.js', exportName: /RequestSchema$/ } },
  { method: 'POST', url: /^\/api\/v3\/organizations\/[^/]+\/ai\/chat\/stream$/, doc: { summary: 'Organisation chat (SSE: start, content, done, error)', tags: ['organisation chat'], produces: ['text/event-stream'], responseHeaders: OPENAI_CHAT_HEADERS }, bodyFrom: { module: '../dialects/org/schema.js', exportName: /RequestSchema$/ } },
  { method: 'POST', url: '/v2/text/chat', doc: { summary: 'Chat with one or several providers, with fallbacks (Eden)', description: edenRules, tags: ['eden'], responseHeaders: OPENAI_CHAT_HEADERS }, bodyFrom: { module: '../dialects/eden/schema.js', exportName: /RequestSchema$/ } },
  { method: 'POST', url: '/v2/text/chat/stream', doc: { summary: 'Chat with one provider; raw text streamed (text/plain)', description: `${edenRules} This route takes exactly one provider.`, tags: ['eden'], produces: ['text/plain'], responseHeaders: OPENAI_CHAT_HEADERS }, bodyFrom: { module: '../dialects/eden/schema.js', exportName: /RequestSchema$/ } },
  { method: 'POST', url: '/v1/messages', doc: { summary: 'Anthropic Messages (buffered or SSE)', tags: ['messages'], produces: ['application/json', 'text/event-stream'], headers: ANTHROPIC_HEADERS, responseHeaders: MESSAGES_HEADERS }, bodyFrom: { module: '../dialects/messages/schema.js', exportName: /^messagesRequestSchema$/ } },
  { method: 'POST', url: '/v1/messages/count_tokens', doc: { summary: "The prompt's input tokens (the Anthropic SDK's messages.countTokens): the body of POST /v1/messages, max_tokens optional", tags: ['messages'], headers: ANTHROPIC_HEADERS, responseHeaders: ['request-id', 'x-switchboard-token-count'] }, bodyFrom: { module: '../dialects/messages/schema.js', exportName: /^countTokensRequestSchema$/ } },
  { method: 'POST', url: '/v1/messages/async', doc: { summary: 'Start an async Messages run; answers at once (202) with its message_id', tags: ['messages'], status: 202, headers: ANTHROPIC_HEADERS, query: z.object({ message_id: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/).optional().describe('The id to give the run (else msg_…); an id the organisation has is a 409') }) }, bodyFrom: { module: '../dialects/messages/schema.js', exportName: /^messagesRequestSchema$/ } },
  { method: 'GET', url: '/v1/messages/async/*', doc: {}, expand: [
    { path: '/v1/messages/async/:message_id', doc: { summary: 'Status of an async run: pending, running, completed, failed, cancelled; usage and the final message', tags: ['messages'] } },
    { path: '/v1/messages/async/:message_id/events', doc: { summary: 'Observe an async run: SSE replayed from the start or after Last-Event-ID', tags: ['messages'], produces: ['text/event-stream'], headers: [{ name: 'Last-Event-ID', description: 'Resume after this event id (a sequence number)' }], query: z.object({ starting_after: z.number().int().min(0).optional().describe('Resume after this event id (when Last-Event-ID is not sent)') }) } },
  ] },
  { method: 'HEAD', url: '/v1/messages/async/*', doc: {}, expand: [{ path: '/v1/messages/async/:message_id', doc: {} }, { path: '/v1/messages/async/:message_id/events', doc: {} }] },
  { method: 'DELETE', url: '/v1/messages/async/*', doc: {}, expand: [{ path: '/v1/messages/async/:message_id', doc: { summary: 'Cancel a pending or running async run', tags: ['messages'] } }] },
  { method: 'GET', url: /^\/api\/v3\/organizations\/[^/]+\/ai\/tools\/executions\/[^/]+$/, doc: { summary: 'An async tool execution: pending, running, complete or failed, with its result', tags: ['organisation chat'] } },
  { method: 'GET', url: '/api/v3/artifacts/:id', doc: { summary: 'Download an artifact of a tool result by its signed, expiring URL', tags: ['organisation chat'], security: 'none', produces: ['application/octet-stream'], query: z.object({ expires: z.number().int().describe('Unix seconds the URL is valid until'), signature: z.string().describe('The URL\'s signature: the credential') }) } },
  { method: 'GET', url: '/v1/router/status', doc: { summary: 'Router state: strategy, retries, fallbacks, and per deployment its load, latency and circuit breaker', tags: ['operations'], security: 'admin' } },
  { method: 'GET', url: '/health', doc: { summary: 'Liveness', tags: ['operations'], security: 'none' } },
  { method: 'GET', url: '/health/ready', doc: { summary: 'Readiness: store reachable, default model loaded (503 otherwise)', tags: ['operations'], security: 'none' } },
  { method: 'GET', url: '/metrics', doc: { summary: 'Prometheus metrics (text format)', tags: ['operations'], security: 'none', produces: ['text/plain'] } },
  { method: 'GET', url: '/openapi.json', doc: { summary: 'This document', tags: ['operations'], security: 'none' } },
];

function matches(known: KnownRoute, route: CatalogRoute): boolean {
  if (known.method !== route.method) return false;
  return typeof known.url === 'string' ? known.url === route.url : known.url.test(route.url);
}

async function loadSchema(from: KnownRoute['bodyFrom']): Promise<z.ZodType | undefined> {
  if (!from) return undefined;
  try {
    const mod = (await import(from.module)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(mod)) if (from.exportName.test(name) && value instanceof z.ZodType) return value;
  } catch {
    // The dialect has not landed: the route is described without a body schema.
  }
  return undefined;
}

/** Fastify `/a/:id/*` → OpenAPI `/a/{id}/{wildcard}`, with the parameter names. */
export function openApiPath(url: string): { path: string; params: string[] } {
  const params: string[] = [];
  const path = url
    .split('/')
    .map((segment) => {
      if (segment.startsWith(':')) {
        const name = segment.slice(1).replace(/\(.*\)$/, '').replace(/\?$/, '');
        params.push(name);
        return `{${name}}`;
      }
      if (segment === '*') {
        params.push('wildcard');
        return '{wildcard}';
      }
      return segment;
    })
    .join('/');
  return { path: path || '/', params };
}

/** Turns zod schemas into JSON Schema 2020-12 and keeps them under components.schemas. */
class SchemaComponents {
  readonly schemas: Record<string, JsonObject> = {};
  private readonly names = new Map<z.ZodType, string>();

  ref(schema: z.ZodType, name: string, io: 'input' | 'output'): JsonObject {
    const known = this.names.get(schema);
    if (known) return { $ref: `#/components/schemas/${known}` };
    let unique = name;
    for (let i = 2; this.schemas[unique]; i++) unique = `${name}${i}`;
    let json: JsonObject;
    try {
      json = z.toJSONSchema(schema, { target: 'draft-2020-12', unrepresentable: 'any', io }) as JsonObject;
    } catch {
      json = { description: 'Schema not expressible in JSON Schema' };
    }
    delete json.$schema;
    // Recursive parts come out as local $defs; hoist them so every $ref resolves in this document.
    const defs = (json.$defs ?? {}) as Record<string, JsonObject>;
    delete json.$defs;
    const rename = (def: string) => `${unique}_${def}`;
    const rewrite = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(rewrite);
      if (value && typeof value === 'object') {
        const out: JsonObject = {};
        for (const [k, v] of Object.entries(value)) {
          out[k] = k === '$ref' && typeof v === 'string' ? v.replace(/^#\/\$defs\/(.+)$/, (_m, d: string) => `#/components/schemas/${rename(d)}`).replace(/^#$/, `#/components/schemas/${unique}`) : rewrite(v);
        }
        return out;
      }
      return value;
    };
    for (const [def, body] of Object.entries(defs)) this.schemas[rename(def)] = rewrite(body) as JsonObject;
    this.schemas[unique] = rewrite(json) as JsonObject;
    this.names.set(schema, unique);
    return { $ref: `#/components/schemas/${unique}` };
  }
}

function pascal(text: string): string {
  return text
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
}

function securityOf(route: CatalogRoute, doc: RouteDoc): Array<Record<string, string[]>> {
  const kind = doc.security ?? (route.url.startsWith('/admin') ? 'admin' : /^\/(health|metrics|openapi)/.test(route.url) ? 'none' : 'key');
  if (kind === 'none') return [];
  if (kind === 'admin') return [{ adminKey: [] }];
  return [{ bearerAuth: [] }, { apiKeyHeader: [] }];
}

function queryParameters(schema: z.ZodType | undefined): JsonObject[] {
  if (!schema) return [];
  let json: JsonObject;
  try {
    json = z.toJSONSchema(schema, { target: 'draft-2020-12', unrepresentable: 'any', io: 'input' }) as JsonObject;
  } catch {
    return [];
  }
  const properties = (json.properties ?? {}) as Record<string, JsonObject>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => ({ name, in: 'query', required: required.has(name), schema: property }));
}

function headersObject(names: string[]): JsonObject {
  return Object.fromEntries(names.map((name) => [name, { description: responseHeaderDescription(name), schema: { type: 'string' } }]));
}

const errorSchema: JsonObject = {
  type: 'object',
  description: "An error in the dialect's own shape (OpenAI {error:{message,type,param,code}}, Messages {type:'error',error}, organisation chat {error,requestId}, Eden {error})",
};

export async function buildOpenApiDocument(catalog: RouteCatalog, info: { version: string }): Promise<JsonObject> {
  const components = new SchemaComponents();
  const paths: Record<string, Record<string, JsonObject>> = {};
  const operationIds = new Set<string>();
  const errorRef = { $ref: '#/components/schemas/Error' };
  components.schemas.Error = errorSchema;

  const described: Array<{ route: CatalogRoute; known?: KnownRoute; doc: RouteDoc }> = [];
  for (const route of catalog.routes) {
    // Fastify adds a HEAD route for every GET: it is described (and secured) as its GET.
    const known = KNOWN_ROUTES.find((k) => matches(k, route)) ?? (route.method === 'HEAD' ? KNOWN_ROUTES.find((k) => matches(k, { ...route, method: 'GET' })) : undefined);
    if (known?.expand) for (const e of known.expand) described.push({ route: { ...route, url: e.path }, known, doc: e.doc });
    else described.push({ route, known, doc: route.doc ?? known?.doc ?? {} });
  }

  for (const { route, known, doc: base } of described) {
    const doc: RouteDoc = { ...base, body: base.body ?? (await loadSchema(known?.bodyFrom)) };
    const { path, params } = openApiPath(route.url);
    const method = route.method.toLowerCase();
    // Two routes of one path and method (GET /v1/models for each SDK, told apart by a header): one operation.
    if (paths[path]?.[method]) continue;
    let operationId = `${method}${pascal(path)}`;
    for (let i = 2; operationIds.has(operationId); i++) operationId = `${method}${pascal(path)}${i}`;
    operationIds.add(operationId);

    const parameters = [
      ...params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
      ...queryParameters(doc.query),
      ...(doc.headers ?? []).map(({ name, description, required }) => ({ name, in: 'header', required: required ?? false, description, schema: { type: 'string' } })),
    ];
    const successStatus = String(doc.status ?? 200);
    const success: JsonObject = { description: doc.summary ?? 'Success', headers: headersObject(['x-request-id', ...(doc.responseHeaders ?? [])]) };
    if (method !== 'head') {
      const content: Record<string, JsonObject> = {};
      for (const type of doc.produces ?? ['application/json']) {
        if (type !== 'application/json') content[type] = { schema: { type: 'string' } };
        else content[type] = { schema: doc.response ? components.ref(doc.response, `${pascal(operationId)}Response`, 'output') : {} };
      }
      success.content = content;
    }
    const operation: JsonObject = {
      operationId,
      summary: method === 'head' ? `Headers of GET ${path}` : doc.summary ?? `${route.method} ${path}`,
      ...(doc.description ? { description: doc.description } : {}),
      tags: doc.tags ?? [path.split('/')[1] ?? 'root'],
      security: securityOf(route, doc),
      ...(parameters.length ? { parameters } : {}),
      responses: {
        [successStatus]: success,
        default: { description: 'Error', headers: headersObject(['x-request-id', 'retry-after']), content: { 'application/json': { schema: errorRef } } },
      },
    };
    if (doc.body && method !== 'get' && method !== 'head') {
      operation.requestBody = { required: true, content: { 'application/json': { schema: components.ref(doc.body, `${pascal(operationId)}Request`, 'input') } } };
    }
    (paths[path] ??= {})[method] = operation;
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchboard',
      version: info.version,
      description: 'Self-hosted LLM chat gateway: OpenAI, Anthropic Messages, organisation chat and Eden dialects over one core, plus the admin and usage APIs.',
    },
    servers: [{ url: '/' }],
    paths,
    components: {
      schemas: components.schemas,
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key of an organisation' },
        apiKeyHeader: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'The same key in x-api-key' },
        adminKey: { type: 'http', scheme: 'bearer', description: 'The admin key (env SWITCHBOARD_ADMIN_KEY)' },
      },
    },
  };
}

export function registerOpenApiRoute(app: FastifyInstance, catalog: RouteCatalog, info: { version: string }): void {
  let document: Promise<JsonObject> | undefined;
  app.get('/openapi.json', async () => (document ??= buildOpenApiDocument(catalog, info)));
}
