// GET /v1/models and GET /v1/models/{id} for both official SDKs: OpenAI's list and retrieve, and,
// for requests carrying `anthropic-version` (the Anthropic SDK sends it on every call), Anthropic's
// ModelInfo pages. A key with allowed models sees only those.
// Build first: npx tsc -p tsconfig.json
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { GatewayError } from '../dist/core/errors.js';
import { startServer } from './helpers/server.mjs';
import { createScriptedFactory } from './helpers/scripted-provider.mjs';
import { validateOpenAI } from './helpers/openai-schema.mjs';

const ADMIN = 'admin-secret-for-model-list-tests';
const MODELS = [
  { id: 'alpha', aliases: ['a1', 'a2'], provider: 'scripted', model: 'x', contextLength: 8192 },
  { id: 'beta', provider: 'scripted', model: 'y', contextLength: 32768 },
  { id: 'gamma', aliases: ['g'], provider: 'scripted', model: 'z' },
];
// Every name a request may use, in config order; the default model also answers to `default`.
const ALL_IDS = ['alpha', 'a1', 'a2', 'default', 'beta', 'gamma', 'g'];

let server;
let openai;
let anthropic;
let restricted;

before(async () => {
  const scripted = createScriptedFactory({ GatewayError });
  server = await startServer({ providers: { scripted: scripted.factory }, config: { defaultModel: 'alpha', models: MODELS }, env: { SWITCHBOARD_ADMIN_KEY: ADMIN } });
  const res = await fetch(`${server.url}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ organisation: 'models-org', allowed_models: ['beta', 'g'] }),
  });
  assert.equal(res.status, 201);
  restricted = (await res.json()).key;
  // With a key in the store, every call needs one; a second, unrestricted key serves the rest.
  const open = await fetch(`${server.url}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ organisation: 'models-org' }) });
  const key = (await open.json()).key;
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: key, maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: server.url, apiKey: key, maxRetries: 0 });
});
after(() => server?.close());

describe('the OpenAI SDK', () => {
  test('models.list: every id and alias, in the schema of OpenAI’s list', async () => {
    const list = await openai.models.list();
    assert.deepEqual(list.data.map((m) => m.id), ALL_IDS);
    const raw = await (await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${openai.apiKey}` } })).json();
    const check = validateOpenAI('ListModelsResponse', raw);
    assert.ok(check.ok, check.errors.join('\n'));
  });

  test('models.retrieve: a model by its id or an alias; an unknown one is a 404 in OpenAI’s shape', async () => {
    const model = await openai.models.retrieve('a2');
    assert.equal(model.id, 'a2');
    assert.equal(model.object, 'model');
    assert.ok(Number.isInteger(model.created));
    const check = validateOpenAI('Model', model);
    assert.ok(check.ok, check.errors.join('\n'));
    await assert.rejects(openai.models.retrieve('nope'), (err) => {
      assert.ok(err instanceof OpenAI.NotFoundError, String(err));
      // As OpenAI answers it: {type: 'invalid_request_error', code: 'model_not_found', param: 'model'}.
      assert.equal(err.code, 'model_not_found');
      assert.equal(err.error.type, 'invalid_request_error');
      return true;
    });
  });
});

describe('the Anthropic SDK', () => {
  test('models.list pages through every model in Anthropic’s shape (limit, after_id)', async () => {
    const first = await anthropic.models.list({ limit: 3 });
    assert.deepEqual(first.data.map((m) => m.id), ALL_IDS.slice(0, 3));
    assert.equal(first.has_more, true);
    assert.equal(first.first_id, 'alpha');
    assert.equal(first.last_id, 'a2');
    const seen = [];
    for await (const model of anthropic.models.list({ limit: 3 })) seen.push(model.id);
    assert.deepEqual(seen, ALL_IDS);
    const beta = first.data[0];
    assert.equal(beta.type, 'model');
    assert.equal(beta.display_name, 'alpha');
    assert.equal(beta.max_input_tokens, 8192);
    assert.equal(beta.lifecycle, 'active');
    assert.equal(new Date(beta.created_at).toISOString(), beta.created_at);
  });

  test('before_id pages backwards; a cursor that names no model and a bad limit are 400s', async () => {
    const back = await anthropic.models.list({ before_id: 'gamma', limit: 2 });
    assert.deepEqual(back.data.map((m) => m.id), ['default', 'beta']);
    assert.equal(back.has_more, true);
    const start = await anthropic.models.list({ before_id: 'a1', limit: 5 });
    assert.deepEqual(start.data.map((m) => m.id), ['alpha']);
    assert.equal(start.has_more, false);
    await assert.rejects(anthropic.models.list({ after_id: 'nope' }), (err) => err instanceof Anthropic.BadRequestError && /after_id|nope/.test(err.message));
    await assert.rejects(anthropic.models.list({ limit: 0 }), (err) => err instanceof Anthropic.BadRequestError && /limit/.test(err.message));
  });

  test('models.retrieve: ModelInfo by id or alias; an unknown model is a 404 not_found_error in Anthropic’s shape', async () => {
    const model = await anthropic.models.retrieve('beta');
    assert.deepEqual([model.type, model.id, model.max_input_tokens], ['model', 'beta', 32768]);
    await assert.rejects(anthropic.models.retrieve('nope'), (err) => {
      assert.ok(err instanceof Anthropic.NotFoundError, String(err));
      assert.equal(err.error.type, 'error');
      assert.equal(err.error.error.type, 'not_found_error');
      return true;
    });
  });
});

test('a key with allowed models lists and retrieves only those, in both shapes', async () => {
  const openaiRestricted = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: restricted, maxRetries: 0 });
  const anthropicRestricted = new Anthropic({ baseURL: server.url, apiKey: restricted, maxRetries: 0 });
  // 'g' is gamma's alias: the key may use gamma under either name.
  assert.deepEqual((await openaiRestricted.models.list()).data.map((m) => m.id), ['beta', 'gamma', 'g']);
  assert.deepEqual((await anthropicRestricted.models.list()).data.map((m) => m.id), ['beta', 'gamma', 'g']);
  await assert.rejects(openaiRestricted.models.retrieve('alpha'), (err) => err instanceof OpenAI.NotFoundError);
  await assert.rejects(anthropicRestricted.models.retrieve('alpha'), (err) => err instanceof Anthropic.NotFoundError);
});

test('without a key the model routes answer 401 in each SDK’s shape', async () => {
  await assert.rejects(new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sb-wrong', maxRetries: 0 }).models.list(), (err) => err instanceof OpenAI.AuthenticationError);
  await assert.rejects(new Anthropic({ baseURL: server.url, apiKey: 'sb-wrong', maxRetries: 0 }).models.list(), (err) => {
    assert.ok(err instanceof Anthropic.AuthenticationError, String(err));
    assert.equal(err.error.error.type, 'authentication_error');
    return true;
  });
});
