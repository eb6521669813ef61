// GET /openapi.json: a valid OpenAPI 3.1 document that covers every route the app registered,
// with request schemas generated from the very zod schemas the server validates with.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import Ajv2020 from 'ajv/dist/2020.js';
import { z } from 'zod';
import { startServer, postJson } from './helpers/server.mjs';
import { createGatedFactory } from './helpers/gated-provider.mjs';
import { chatCompletionRequestSchema } from '../dist/dialects/openai/schema.js';
import { createKeyBodySchema } from '../dist/server/admin/schemas.js';

const ADMIN = 'admin-secret-for-openapi-tests';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const gated = createGatedFactory();
let server;
let doc;

const newAjv = () => new Ajv2020({ strict: false, validateFormats: false, allErrors: true });

/** The app's own route table (printRoutes tree) → [{method, url}]. */
function registeredRoutes(app) {
  const routes = [];
  const stack = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)[├└]── (.*) \(([A-Z, ]+)\)$/.exec(line);
    if (!match) continue;
    const depth = match[1].length / 4;
    stack.length = depth;
    const url = (stack[depth - 1] ?? '') + match[2];
    stack[depth] = url;
    for (const method of match[3].split(', ')) routes.push({ method: method.toLowerCase(), url });
  }
  return routes;
}

const toOpenApi = (url) => url.replace(/:(\w+)/g, '{$1}');

before(async () => {
  server = await startServer({
    config: { models: [{ id: 'gm', provider: 'gated', model: 'gated-1' }] },
    providers: { gated: gated.factory },
    env: { SWITCHBOARD_ADMIN_KEY: ADMIN },
  });
  const res = await fetch(`${server.url}/openapi.json`);
  assert.equal(res.status, 200);
  doc = await res.json();
});
after(() => server?.close());

test('the document validates against the OpenAPI 3.1 structure', () => {
  const meta = JSON.parse(fs.readFileSync(new URL('./fixtures/openapi-3.1-minimal.schema.json', import.meta.url), 'utf8'));
  const validate = newAjv().compile(meta);
  assert.ok(validate(doc), JSON.stringify(validate.errors?.slice(0, 5), null, 2));
  assert.equal(doc.openapi, '3.1.0');
  // Every operation id is unique; every path parameter is declared.
  const ids = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      ids.push(op.operationId);
      const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name).sort();
      const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      assert.deepEqual(declared, inPath, `${method} ${path}`);
    }
  }
  assert.equal(new Set(ids).size, ids.length);
});

test('every schema is valid JSON Schema 2020-12 and every $ref resolves', () => {
  const ajv = newAjv();
  ajv.addSchema({ ...doc, $id: 'https://switchboard.test/openapi.json' });
  for (const name of Object.keys(doc.components.schemas)) {
    assert.doesNotThrow(() => ajv.compile({ $ref: `https://switchboard.test/openapi.json#/components/schemas/${name}` }), name);
  }
  const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
  assert.ok(refs.length > 0);
  for (const ref of refs) {
    const target = ref.slice(8, -1);
    assert.match(target, /^#\/components\/schemas\//);
    assert.ok(doc.components.schemas[target.split('/').pop()], `${target} resolves`);
  }
});

test('every route the app registered is in the document', () => {
  const routes = registeredRoutes(server.server.app);
  assert.ok(routes.length >= 20, `parsed ${routes.length} routes`);
  for (const { method, url } of routes) {
    if (url.includes('*')) {
      const prefix = toOpenApi(url.slice(0, url.indexOf('*')));
      assert.ok(Object.entries(doc.paths).some(([p, item]) => p.startsWith(prefix) && item[method]), `${method} ${url}`);
    } else {
      assert.ok(doc.paths[toOpenApi(url)]?.[method], `${method.toUpperCase()} ${url} is documented`);
    }
  }
  // The contract's routes in particular.
  for (const [method, path] of [
    ['post', '/v1/chat/completions'],
    ['post', '/api/v3/inference/chat/completions'],
    ['get', '/v1/models'],
    ['post', '/api/v3/organizations/{organisation}/ai/chat'],
    ['post', '/api/v3/organizations/{organisation}/ai/chat/stream'],
    ['get', '/api/v3/organizations/{organisation}/ai/tools/executions/{executionId}'],
    ['post', '/v2/text/chat'],
    ['post', '/v2/text/chat/stream'],
    ['post', '/v1/messages'],
    ['post', '/v1/messages/async'],
    ['get', '/v1/messages/async/{message_id}/events'],
    ['get', '/v1/messages/async/{message_id}'],
    ['delete', '/v1/messages/async/{message_id}'],
    ['get', '/health'],
    ['get', '/health/ready'],
    ['get', '/metrics'],
    ['get', '/v1/usage'],
    ['post', '/admin/keys'],
  ]) {
    assert.ok(doc.paths[path]?.[method], `${method} ${path}`);
  }
});

test('every documented operation is served (no unknown-route 404)', async () => {
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of Object.keys(item).filter((m) => METHODS.includes(m) && m !== 'head')) {
      const url = server.url + path.replace(/\{\w+\}/g, 'probe');
      const res = await fetch(url, { method: method.toUpperCase(), headers: method === 'get' || method === 'delete' ? {} : { 'content-type': 'application/json' }, body: method === 'get' || method === 'delete' ? undefined : '{}' });
      const text = await res.text();
      assert.ok(!text.includes('unknown_route'), `${method.toUpperCase()} ${path} → ${res.status} ${text.slice(0, 200)}`);
    }
  }
});

test('request schemas are the ones the server validates with', async () => {
  const io = { target: 'draft-2020-12', unrepresentable: 'any', io: 'input' };
  const chatRef = doc.paths['/v1/chat/completions'].post.requestBody.content['application/json'].schema.$ref;
  const chatSchema = doc.components.schemas[chatRef.split('/').pop()];
  const { $schema, ...expected } = z.toJSONSchema(chatCompletionRequestSchema, io);
  assert.deepEqual(chatSchema, expected);
  const keyRef = doc.paths['/admin/keys'].post.requestBody.content['application/json'].schema.$ref;
  const { $schema: _, ...expectedKey } = z.toJSONSchema(createKeyBodySchema, io);
  assert.deepEqual(doc.components.schemas[keyRef.split('/').pop()], expectedKey);
  // The document and the server agree on what is valid.
  const validate = newAjv().compile(chatSchema);
  const good = { model: 'gm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
  const bad = { ...good, max_tokens: 0 };
  assert.equal(validate(good), true);
  assert.equal(validate(bad), false);
  const open = { authorization: `Bearer ${ADMIN}` };
  assert.equal((await postJson(`${server.url}/v1/chat/completions`, good, open)).status, 200);
  assert.equal((await postJson(`${server.url}/v1/chat/completions`, bad, open)).status, 400);
  // Every dialect's chat route carries a request body schema.
  for (const path of ['/api/v3/organizations/{organisation}/ai/chat', '/v2/text/chat', '/v1/messages']) {
    assert.ok(doc.paths[path].post.requestBody?.content['application/json'].schema.$ref, path);
  }
  // The Messages body in the document describes its tools and content blocks, server tools included.
  const messagesRef = doc.paths['/v1/messages'].post.requestBody.content['application/json'].schema.$ref;
  const validateMessages = newAjv().compile(doc.components.schemas[messagesRef.split('/').pop()]);
  const messages = { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] };
  assert.equal(validateMessages({ ...messages, tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 2 }] }), true);
  assert.equal(validateMessages({ ...messages, tools: [{ name: 'no_schema' }] }), false);
  assert.equal(validateMessages({ ...messages, messages: [{ role: 'user', content: [{ type: 'text' }] }] }), false);
  // Admin and usage responses are described too.
  assert.ok(doc.paths['/v1/usage'].get.responses['200'].content['application/json'].schema.$ref);
  assert.deepEqual(doc.paths['/admin/keys'].post.security, [{ adminKey: [] }]);
  assert.deepEqual(doc.paths['/health'].get.security, []);
});

test('docs/api.md links to the document', () => {
  const text = fs.readFileSync(new URL('../docs/api.md', import.meta.url), 'utf8');
  assert.match(text, /\/openapi\.json/);
});

test('statuses, security, parameters and headers are those the server uses', async () => {
  // POST /v1/messages/async answers 202; its ?message_id= and the SDK's headers are described.
  const asyncPost = doc.paths['/v1/messages/async'].post;
  assert.deepEqual(Object.keys(asyncPost.responses), ['202', 'default']);
  const started = await postJson(`${server.url}/v1/messages/async`, { model: 'gm', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${ADMIN}` });
  assert.equal(started.status, 202);
  const params = (op) => op.parameters.map((p) => `${p.in}:${p.name}`);
  assert.deepEqual(params(asyncPost), ['query:message_id', 'header:anthropic-version', 'header:anthropic-beta']);
  assert.ok(params(doc.paths['/v1/chat/completions'].post).includes('header:X-Session-ID'));
  assert.deepEqual(params(doc.paths['/v1/messages/async/{message_id}/events'].get), ['path:message_id', 'query:starting_after', 'header:Last-Event-ID']);
  assert.deepEqual(params(doc.paths['/api/v3/artifacts/{id}'].get), ['path:id', 'query:expires', 'query:signature']);
  // count_tokens has its body; one operation per path and method (no getV1Models2).
  assert.ok(doc.paths['/v1/messages/count_tokens'].post.requestBody);
  const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
  assert.deepEqual(ids.filter((id) => /\d$/.test(id)), []);
  assert.deepEqual(params(doc.paths['/v1/models'].get), ['query:limit', 'query:after_id', 'query:before_id', 'header:anthropic-version']);
  // Security as enforced: the router status wants the admin key; a HEAD is secured as its GET.
  assert.deepEqual(doc.paths['/v1/router/status'].get.security, [{ adminKey: [] }]);
  assert.deepEqual(doc.paths['/api/v3/artifacts/{id}'].head.security, []);
  // Response headers: every response has x-request-id; chat routes say who served them.
  assert.ok(doc.paths['/health'].get.responses['200'].headers['x-request-id']);
  assert.ok(doc.paths['/v1/chat/completions'].post.responses['200'].headers['x-switchboard-provider']);
  assert.ok(doc.paths['/v1/messages'].post.responses['200'].headers['anthropic-ratelimit-requests-remaining']);
  assert.ok(doc.paths['/v1/messages'].post.responses.default.headers['retry-after']);
});

test("the router status refuses a client key in OpenAI's error shape (it was Fastify's {statusCode, error})", async () => {
  const created = await postJson(`${server.url}/admin/keys`, { organisation: 'openapi-org' }, { authorization: `Bearer ${ADMIN}` });
  const res = await fetch(`${server.url}/v1/router/status`, { headers: { authorization: `Bearer ${created.body.key}` } });
  assert.equal(res.status, 403);
  const body = await res.json();
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual([body.error.type, body.error.code], ['permission_error', 'admin_required']);
});
