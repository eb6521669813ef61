// Browser access (CORS): off by default; `server.cors.origins` lets the pages of those origins
// call the API, buffered and streamed (streams are written on the raw response, so the headers
// hooks set must reach them too). '*' on a server without keys is refused at start.
// Build first: npx tsc -p tsconfig.json
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { stringify } from 'yaml';
import { GatewayError } from '../dist/core/errors.js';
import { loadConfig } from '../dist/core/config.js';
import { createServer } from '../dist/server/app.js';
import { startServer } from './helpers/server.mjs';
import { createScriptedFactory } from './helpers/scripted-provider.mjs';

const APP = 'https://app.example.com';
const ADMIN = 'admin-secret-for-cors-tests';
const models = [{ id: 'm1', provider: 'scripted', model: 'x' }];

async function newKey(url) {
  const res = await fetch(`${url}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ organisation: 'web' }) });
  assert.equal(res.status, 201);
  return (await res.json()).key;
}

describe('with server.cors.origins', () => {
  let server;
  let key;
  before(async () => {
    const scripted = createScriptedFactory({ GatewayError });
    server = await startServer({ providers: { scripted: scripted.factory }, config: { server: { cors: { origins: [APP] } }, defaultModel: 'm1', models }, env: { SWITCHBOARD_ADMIN_KEY: ADMIN } });
    key = await newKey(server.url);
  });
  after(() => server?.close());

  test('a preflight from a listed origin allows the method and the headers the page asks for', async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, x-session-id' },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), APP);
    assert.match(res.headers.get('access-control-allow-methods'), /POST/);
    assert.equal(res.headers.get('access-control-allow-headers'), 'authorization, content-type, x-session-id');
    assert.equal(res.headers.get('access-control-max-age'), '600');
  });

  test('another origin gets no CORS headers', async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    assert.equal(res.headers.get('access-control-allow-origin'), null);
  });

  test('buffered and streamed answers (OpenAI and Messages) carry the allowed origin and expose the request id', async () => {
    const user = [{ role: 'user', content: 'hello there' }];
    const calls = [
      ['/v1/chat/completions', { model: 'm1', messages: user }],
      ['/v1/chat/completions', { model: 'm1', messages: user, stream: true }],
      ['/v1/messages', { model: 'm1', max_tokens: 9, messages: user, stream: true }],
    ];
    for (const [route, body] of calls) {
      const res = await fetch(`${server.url}${route}`, { method: 'POST', headers: { origin: APP, authorization: `Bearer ${key}`, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify(body) });
      await res.text();
      assert.equal(res.status, 200, route);
      assert.equal(res.headers.get('access-control-allow-origin'), APP, `${route} stream=${body.stream === true}`);
      assert.match(res.headers.get('access-control-expose-headers'), /x-request-id/);
      assert.ok(res.headers.get('x-request-id'));
    }
  });
});

test('without server.cors no response carries CORS headers', async () => {
  const scripted = createScriptedFactory({ GatewayError });
  const server = await startServer({ providers: { scripted: scripted.factory }, config: { defaultModel: 'm1', models } });
  try {
    const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { origin: APP, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm1', messages: [{ role: 'user', content: 'hi' }], stream: true }) });
    await res.text();
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), null);
  } finally {
    await server.close();
  }
});

test("'*' on a server without keys is refused at start; named origins are not", async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-cors-'));
  const start = (origins) => {
    const configFile = path.join(dataDir, 'switchboard.yaml');
    fs.writeFileSync(configFile, stringify({ server: { host: '127.0.0.1', port: 0, logLevel: 'silent', cors: { origins } }, defaultModel: 'm1', models }));
    return createServer({
      config: loadConfig({ configFile, dataDir }, {}),
      env: {},
      logger: pino({ level: 'silent' }),
      providers: { scripted: createScriptedFactory({ GatewayError }).factory },
    });
  };
  try {
    const any = await start(['*']);
    await assert.rejects(any.listen(), /cors\.origins allows '\*'/);
    await any.close();
    const named = await start([APP]);
    assert.match(await named.listen(), /^http:\/\/127\.0\.0\.1:/);
    await named.close();
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
