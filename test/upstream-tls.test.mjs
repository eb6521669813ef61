// An upstream whose TLS fails — a certificate the gateway does not trust, an endpoint that offers
// no HTTP/2 to Bedrock's SDK — is a 502 `upstream_tls_error` that says what failed and what to
// do, from every remote provider (the openai provider answered 500 "Internal error" before).
// test/fixtures/tls holds a self-signed certificate for 127.0.0.1, made for this test only.
import fs from 'node:fs';
import https from 'node:https';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { postJson, startServer } from './helpers/server.mjs';

const fixture = (name) => fs.readFileSync(new URL(`./fixtures/tls/${name}`, import.meta.url));
process.env.SB_TLS_TEST_SECRET = 'not-a-secret';

let upstream;
let gateway;
before(async () => {
  // node:https offers HTTP/1.1 only in its handshake.
  upstream = https.createServer({ key: fixture('self-signed-key.pem'), cert: fixture('self-signed-cert.pem') }, (req, res) => res.writeHead(500).end());
  await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  gateway = await gatewayTo(`https://127.0.0.1:${upstream.address().port}`);
});

/** A gateway whose remote models (openai, anthropic, bedrock over HTTP/2 and over HTTP/1.1) all call `base`. */
function gatewayTo(base) {
  const bedrock = { provider: 'bedrock', model: 'anthropic.claude-3-7-sonnet-20250219-v1:0', baseUrl: base, region: 'us-east-1' };
  const credentials = { accessKeyId: 'AKIDTLS', secretAccessKeyEnv: 'SB_TLS_TEST_SECRET' };
  return startServer({
    env: { TLS_TEST_KEY: 'k' },
    config: {
      router: { retries: 0 },
      models: [
        { id: 't-openai', provider: 'openai', model: 'gpt-4o-mini', baseUrl: `${base}/v1` },
        { id: 't-anthropic', provider: 'anthropic', model: 'claude-sonnet-4-5', baseUrl: base, apiKeyEnv: 'TLS_TEST_KEY' },
        { id: 't-bedrock', ...bedrock, options: credentials },
        { id: 't-bedrock-http1', ...bedrock, options: { ...credentials, http1: true } },
      ],
    },
  });
}
after(async () => {
  await gateway?.close();
  await new Promise((resolve) => upstream?.close(resolve));
});

const ask = (model, stream) => postJson(`${gateway.url}/v1/chat/completions`, { model, stream, messages: [{ role: 'user', content: 'hello' }] });

test('an untrusted certificate: 502 upstream_tls_error naming it and NODE_EXTRA_CA_CERTS, buffered and streamed', async () => {
  for (const [model, provider] of [['t-openai', 'openai'], ['t-anthropic', 'anthropic'], ['t-bedrock-http1', 'bedrock']]) {
    for (const stream of [false, true]) {
      const res = await ask(model, stream);
      assert.equal(res.status, 502, `${model} stream=${stream}: ${res.text}`);
      assert.equal(res.body.error.code, 'upstream_tls_error');
      assert.equal(res.body.error.message, `TLS with the ${provider} upstream failed: self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT); a private CA's certificate goes in NODE_EXTRA_CA_CERTS`);
    }
  }
});

test("Bedrock's HTTP/2 against an endpoint that offers none: the error says to set http1", async () => {
  const res = await ask('t-bedrock', false);
  assert.equal(res.status, 502, res.text);
  assert.equal(res.body.error.code, 'upstream_tls_error');
  assert.match(res.body.error.message, /^TLS with the bedrock upstream failed: .*no application protocol \(ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL\); the endpoint does not offer HTTP\/2: set the deployment option http1$/);
});

test('an https baseUrl for a server that speaks plain HTTP: the error asks whether it should be http://', async () => {
  const plain = (await import('node:http')).createServer((req, res) => res.end('{}'));
  await new Promise((resolve) => plain.listen(0, '127.0.0.1', resolve));
  const s = await gatewayTo(`https://127.0.0.1:${plain.address().port}`);
  try {
    for (const model of ['t-openai', 't-anthropic', 't-bedrock-http1']) {
      const res = await postJson(`${s.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content: 'hello' }] });
      assert.equal(res.status, 502, res.text);
      assert.equal(res.body.error.code, 'upstream_tls_error');
      assert.match(res.body.error.message, /wrong version number \((ERR_SSL_WRONG_VERSION_NUMBER|EPROTO)\): the server does not speak TLS there; should the baseUrl start with http:\/\/\?$/);
    }
  } finally {
    await s.close();
    await new Promise((resolve) => plain.close(resolve));
  }
});
