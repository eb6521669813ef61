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

const openAIChat: RouteDoc = { summary: 'Chat completion (OpenAI wire format); SSE when stream is true', tags: ['openai'], body: chatCompletionRequestSchema, produces: ['application/json', 'text/event-stream'] };

const KNOWN_ROUTES: KnownRoute[] = [
  { method: 'POST', url: '/v1/chat/completions', doc: openAIChat },
  { method: 'POST', url: '/api/v3/inference/chat/completions', doc: { ...openAIChat, summary: 'Chat completion (seed alias of /v1/chat/completions; prompts trimmed to 1500 tokens by default)' } },
  { method: 'GET', url: '/v1/models', doc: { summary: "Every model id and alias the caller's key may use: OpenAI's list, or for a request with anthropic-version (the Anthropic SDK) Anthropic's ModelInfo page (limit, after_id, before_id)", tags: ['openai', 'messages'] } },
  { method: 'GET', url: '/v1/models/:id', doc: { summary: "One model by id or alias, in OpenAI's shape or (with anthropic-version) Anthropic's ModelInfo; 404 for a model the key may not use", tags: ['openai', 'messages'] } },
  { method: 'GET', url: '/v1/sessions/:id', doc: { summary: 'A server-side conversation kept by X-Session-ID', tags: ['openai'] } },
  { method: 'POST', url: /^\/api\/v3\/organizations\/[^/]+\/ai\/chat$/, doc: { summary: 'Organisation chat (buffered)', tags: ['organisation chat'] }, bodyFrom: { module: '../dialects/org/schema.js', exportName: /RequestSchema$/ } },
  { method: 'POST', url: /^\/api\/v3\/organizations\/[^/]+\/ai\/chat\/stream$/, doc: { summary: 'Organisation chat (SSE: start, content, done, error)', tags: ['organisation chat'], produces: ['text/event-stream'] }, bodyFrom: { module: '../dialects/org/schema.js', exportName: /RequestSchema$/ } },
  { method: 'POST', url: '/v2/text/chat', doc: { summary: 'Chat with one or several providers, with fallbacks (Eden)', tags: ['eden'] }, bodyFrom: { module: '../dialects/eden/schema.js', exportName: /RequestSchema$/ } },
  { method: 'POST', url: '/v2/text/chat/stream', doc: { summary: 'Chat with one provider; raw text streamed (text/plain)', tags: ['eden'], produces: ['text/plain'] }, bodyFrom: { module: '../dialects/eden/schema.js', exportName: /RequestSchema$/ } },
  { method: 'POST', url: '/v1/messages', doc: { summary: 'Anthropic Messages (buffered or SSE)', tags: ['messages'], produces: ['application/json', 'text/event-stream'] }, bodyFrom: { module: '../dialects/messages/schema.js', exportName: /^messagesRequestSchema$/ } },
  { method: 'POST', url: '/v1/messages/async', doc: { summary: 'Start an async Messages run; answers at once with its message_id', tags: ['messages'] }, bodyFrom: { module: '../dialects/messages/schema.js', exportName: /^messagesRequestSchema$/ } },
  { method: 'GET', url: '/v1/messages/async/*', doc: {}, expand: [
    { path: '/v1/messages/async/:message_id', doc: { summary: 'Status of an async run: pending, running, completed, failed, cancelled; usage and the final message', tags: ['messages'] } },
    { path: '/v1/messages/async/:message_id/events', doc: { summary: 'Observe an async run: SSE replayed from the start or after Last-Event-ID', tags: ['messages'], produces: ['text/event-stream'] } },
  ] },
  { method: 'HEAD', url: '/v1/messages/async/*', doc: {}, expand: [{ path: '/v1/messages/async/:message_id', doc: {} }, { path: '/v1/messages/async/:message_id/events', doc: {} }] },
  { method: 'DELETE', url: '/v1/messages/async/*', doc: {}, expand: [{ path: '/v1/messages/async/:message_id', doc: { summary: 'Cancel a pending or running async run', tags: ['messages'] } }] },
  { method: 'GET', url: /^\/api\/v3\/organizations\/[^/]+\/ai\/tools\/executions\/[^/]+$/, doc: { summary: 'An async tool execution: pending, running, complete or failed, with its result', tags: ['organisation chat'] } },
  { method: 'GET', url: '/api/v3/artifacts/:id', doc: { summary: 'Download an artifact of a tool result by its signed, expiring URL', tags: ['organisation chat'], security: 'none', produces: ['application/octet-stream'] } },
  { method: 'GET', url: '/v1/router/status', doc: { summary: 'Router state: strategy, retries, fallbacks, and per deployment its load, latency and circuit breaker', tags: ['operations'] } },
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
    const known = KNOWN_ROUTES.find((k) => matches(k, route));
    if (known?.expand) for (const e of known.expand) described.push({ route: { ...route, url: e.path }, known, doc: e.doc });
    else described.push({ route, known, doc: route.doc ?? known?.doc ?? {} });
  }

  for (const { route, known, doc: base } of described) {
    const doc: RouteDoc = { ...base, body: base.body ?? (await loadSchema(known?.bodyFrom)) };
    const { path, params } = openApiPath(route.url);
    const method = route.method.toLowerCase();
    let operationId = `${method}${pascal(path)}`;
    for (let i = 2; operationIds.has(operationId); i++) operationId = `${method}${pascal(path)}${i}`;
    operationIds.add(operationId);

    const parameters = [
      ...params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
      ...(method === 'head' ? [] : queryParameters(doc.query)),
    ];
    const successStatus = String(doc.status ?? 200);
    const success: JsonObject = { description: doc.summary ?? 'Success' };
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
        default: { description: 'Error', content: { 'application/json': { schema: errorRef } } },
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
