// With S3 configured, tool files go to the bucket and the URLs are real S3 presigned URLs
// (SigV4 query signatures). A loopback server plays S3 (path-style).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { png } from './helpers/media-fixtures.mjs';
import { postJson, startServer } from './helpers/server.mjs';
import { createToolLoopFactory } from './helpers/tool-loop-provider.mjs';
import { startToolServer } from './helpers/tool-http-server.mjs';
import { startConnectProxy, withEnv } from './helpers/connect-proxy.mjs';
import { s3Endpoint } from '../dist/core/artifacts/store.js';

const objects = new Map();
let s3;
let s3Url;
let tools;
let server;

before(async () => {
  s3 = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const key = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (req.method === 'PUT') {
      objects.set(key, { body: Buffer.concat(chunks), contentType: req.headers['content-type'], authorization: req.headers.authorization });
      res.writeHead(200, { etag: '"abc"' }).end();
    } else if (req.method === 'GET' && objects.has(key)) {
      res.writeHead(200, { 'content-type': objects.get(key).contentType }).end(objects.get(key).body);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => s3.listen(0, '127.0.0.1', r));
  s3Url = `http://127.0.0.1:${s3.address().port}`;
  tools = await startToolServer();
  server = await gateway();
});

/** A server whose tool files go to the loopback S3 (its clients pick their transport at start). */
async function gateway() {
  const loop = createToolLoopFactory();
  return startServer({
    config: {
      models: [{ id: 'loop', provider: 'toolloop', model: 'toolloop' }],
      tools: { http: [{ name: 'make_image', url: `${tools.url}/image`, allowPrivateNetwork: true }] },
      artifacts: { ttlSeconds: 600, s3: { bucket: 'media', region: 'ap-southeast-2', endpoint: s3Url, forcePathStyle: true, prefix: 'out/', accessKeyIdEnv: 'S3_KEY', secretAccessKeyEnv: 'S3_SECRET' } },
    },
    providers: { toolloop: loop.factory },
    env: { S3_KEY: 'AKIDTEST', S3_SECRET: 'secret' },
  });
}

after(async () => {
  await server.close();
  await tools.close();
  await new Promise((r) => s3.close(r));
});

const askForImage = (gatewayUrl) =>
  postJson(`${gatewayUrl}/api/v3/organizations/acme/ai/chat`, {
    modelId: 'loop',
    messages: [{ role: 'user', content: 'call:make_image {}' }],
    autoExecute: true,
    allowedTools: ['make_image'],
  });

test('an image from a tool is put in the bucket and served through an S3 presigned URL', async () => {
  const res = await askForImage(server.url);
  assert.equal(res.status, 200, res.text);
  const use = res.body.response.toolUse;
  assert.deepEqual(use.images, [`data:image/png;base64,${png.toString('base64')}`]);
  const url = new URL(use.s3Urls[0]);
  assert.equal(url.origin, s3Url);
  assert.match(url.pathname, /^\/media\/out\/acme\/art_/);
  assert.equal(url.searchParams.get('X-Amz-Expires'), '600');
  assert.match(url.searchParams.get('X-Amz-Credential'), /^AKIDTEST\/\d{8}\/ap-southeast-2\/s3\/aws4_request$/);
  assert.match(url.searchParams.get('X-Amz-Signature'), /^[0-9a-f]{64}$/);
  const stored = objects.get(url.pathname);
  assert.ok(stored.body.equals(png));
  assert.equal(stored.contentType, 'image/png');
  assert.match(stored.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDTEST\//);
  const download = await fetch(url);
  assert.ok(Buffer.from(await download.arrayBuffer()).equals(png));
  // The gateway's own artifact route does not serve S3-stored files.
  const own = await fetch(`${server.url}/api/v3/artifacts/art_aaaaaaaaaaaaaaaaaaaa?expires=1&signature=x`);
  assert.equal(own.status, 404);
});

test('behind an egress proxy the upload goes through its CONNECT tunnel; NO_PROXY sends it directly', async () => {
  const proxy = await startConnectProxy();
  try {
    for (const [vars, tunnelled] of [[{ HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: '' }, true], [{ HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1' }, false]]) {
      proxy.tunnels.length = 0;
      const before = objects.size;
      await withEnv(vars, async () => {
        const proxied = await gateway();
        try {
          const res = await askForImage(proxied.url);
          assert.equal(res.status, 200, res.text);
          assert.equal(new URL(res.body.response.toolUse.s3Urls[0]).origin, s3Url);
        } finally {
          await proxied.close();
        }
      });
      assert.equal(objects.size, before + 1, 'the file reached the bucket');
      assert.deepEqual(proxy.tunnels, tunnelled ? [new URL(s3Url).host] : [], JSON.stringify(vars));
    }
  } finally {
    await proxy.close();
  }
});

test('the proxy is chosen for the endpoint the S3 client will call', () => {
  const s3 = { bucket: 'media', region: 'ap-southeast-2', prefix: 'out/', forcePathStyle: false };
  assert.equal(s3Endpoint({ ...s3, endpoint: 'https://minio.internal:9000' }, { AWS_ENDPOINT_URL: 'https://x' }), 'https://minio.internal:9000');
  assert.equal(s3Endpoint(s3, { AWS_ENDPOINT_URL_S3: 'https://s3-vpce.example', AWS_ENDPOINT_URL: 'https://x' }), 'https://s3-vpce.example');
  assert.equal(s3Endpoint(s3, {}), 'https://media.s3.ap-southeast-2.amazonaws.com');
  assert.equal(s3Endpoint({ ...s3, forcePathStyle: true }, {}), 'https://s3.ap-southeast-2.amazonaws.com');
});
