// Remote providers behind an egress proxy: with HTTPS_PROXY / HTTP_PROXY set, the openai,
// anthropic and bedrock providers reach their upstreams through a CONNECT tunnel of the proxy
// (Bedrock over HTTP/1.1 there, its SDK's HTTP/2 otherwise), and hosts in NO_PROXY directly.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeOpenAI } from './helpers/fake-openai-upstream.mjs';
import { startFakeAnthropic } from './helpers/fake-anthropic-upstream.mjs';
import { startFakeBedrock } from './helpers/fake-bedrock-upstream.mjs';
import { startConnectProxy, withEnv } from './helpers/connect-proxy.mjs';
import { startServer, postJson } from './helpers/server.mjs';
import { pullModel } from '../dist/providers/local/download.js';

const AWS = { accessKeyId: 'AKIDPROXY', secretAccessKey: 'proxy/fake+secret' };
process.env.SB_PROXY_BEDROCK_SECRET = AWS.secretAccessKey;

let fakes;
let proxy;
before(async () => {
  const [openai, anthropic, bedrock] = await Promise.all([startFakeOpenAI(), startFakeAnthropic({ apiKey: 'sk-ant-proxy' }), startFakeBedrock(AWS)]);
  fakes = { openai, anthropic, bedrock };
  proxy = await startConnectProxy();
});
after(async () => {
  await proxy?.close();
  await Promise.all(Object.values(fakes ?? {}).map((f) => f.close()));
});

/** A fresh server (so its providers build their connections under the current environment). */
async function gateway() {
  return startServer({
    env: { PROXY_ANTHROPIC_KEY: 'sk-ant-proxy' },
    config: {
      router: { retries: 0 },
      models: [
        { id: 'p-openai', provider: 'openai', model: 'gpt-4o-mini', baseUrl: fakes.openai.url },
        { id: 'p-anthropic', provider: 'anthropic', model: 'claude-sonnet-4-5', baseUrl: fakes.anthropic.url, apiKeyEnv: 'PROXY_ANTHROPIC_KEY' },
        {
          id: 'p-bedrock',
          provider: 'bedrock',
          model: 'anthropic.claude-3-7-sonnet-20250219-v1:0',
          baseUrl: fakes.bedrock.url,
          region: 'eu-west-3',
          options: { accessKeyId: AWS.accessKeyId, secretAccessKeyEnv: 'SB_PROXY_BEDROCK_SECRET' },
        },
      ],
    },
  });
}

const hostOf = (url) => new URL(url).host;

async function askEach(server) {
  for (const model of ['p-openai', 'p-anthropic', 'p-bedrock']) {
    for (const stream of [false, true]) {
      const res = await postJson(`${server.url}/v1/chat/completions`, { model, stream, max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] });
      assert.equal(res.status, 200, `${model} stream=${stream}: ${res.text.slice(0, 300)}`);
    }
  }
}

/** The HTTP versions of the Bedrock requests received since `from`. */
const bedrockVersions = (from) => [...new Set(fakes.bedrock.requests.slice(from).map((r) => r.httpVersion))];

/** Every provider answers with HTTPS_PROXY and HTTP_PROXY set to `value`, through `proxyServer`'s tunnels. */
async function askEachThrough(proxyServer, value) {
  await withEnv({ HTTPS_PROXY: value, HTTP_PROXY: value, NO_PROXY: '' }, async () => {
    const server = await gateway();
    try {
      await askEach(server);
    } finally {
      await server.close();
    }
  });
  for (const name of ['openai', 'anthropic', 'bedrock']) assert.ok(proxyServer.tunnels.includes(hostOf(fakes[name].url)), `${name}: ${proxyServer.tunnels.join(', ')}`);
}

test('with a proxy set, the openai, anthropic and bedrock providers reach their upstreams through a CONNECT tunnel', async () => {
  const from = fakes.bedrock.requests.length;
  await withEnv({ HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url }, async () => {
    const server = await gateway();
    try {
      await askEach(server);
    } finally {
      await server.close();
    }
  });
  for (const name of ['openai', 'anthropic', 'bedrock']) assert.ok(proxy.tunnels.includes(hostOf(fakes[name].url)), `${name} through the proxy: ${proxy.tunnels.join(', ')}`);
  assert.deepEqual(bedrockVersions(from), ['1.1'], 'bedrock speaks HTTP/1.1 through the tunnel');
  const bedrockRequests = fakes.bedrock.requests.slice(from);
  assert.equal(bedrockRequests.length, 2);
  assert.ok(bedrockRequests.every((r) => r.signatureValid), 'the SigV4 signature holds through the tunnel');
});

test('hosts in NO_PROXY, and every host with no proxy set, are reached directly', async () => {
  proxy.tunnels.length = 0;
  const from = fakes.bedrock.requests.length;
  await withEnv({ HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1' }, async () => {
    const server = await gateway();
    try {
      await askEach(server);
    } finally {
      await server.close();
    }
  });
  const server = await gateway();
  try {
    await askEach(server);
  } finally {
    await server.close();
  }
  assert.deepEqual(proxy.tunnels, []);
  assert.deepEqual(bedrockVersions(from), ['2.0'], 'bedrock keeps its SDK\'s HTTP/2 when it goes direct');
});

test('a proxy that refuses the tunnel is a 502 proxy_refused from every provider, never the upstream\'s answer or a cancel; a download names the proxy', async () => {
  const forbidding = await startConnectProxy({ refuseWith: 403 });
  try {
    await withEnv({ HTTPS_PROXY: forbidding.url, HTTP_PROXY: forbidding.url }, async () => {
      const server = await gateway();
      try {
        for (const model of ['p-openai', 'p-anthropic', 'p-bedrock']) {
          const res = await postJson(`${server.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content: 'hello' }] });
          assert.deepEqual([res.status, res.body.error.code], [502, 'proxy_refused'], `${model}: ${res.text}`);
          assert.match(res.body.error.message, /^The egress proxy refused to connect to the \w+ upstream \(403\)$/);
        }
      } finally {
        await server.close();
      }
    });
  } finally {
    await forbidding.close();
  }

  const refusing = await startConnectProxy({ refuseWith: 407 });
  try {
    await withEnv({ HTTPS_PROXY: refusing.url, HTTP_PROXY: refusing.url }, async () => {
      const server = await gateway();
      const reached = Object.fromEntries(Object.entries(fakes).map(([name, fake]) => [name, fake.requests?.length]));
      try {
        for (const model of ['p-openai', 'p-anthropic', 'p-bedrock']) {
          for (const stream of [false, true]) {
            const res = await postJson(`${server.url}/v1/chat/completions`, { model, stream, messages: [{ role: 'user', content: 'hello' }] });
            assert.equal(res.status, 502, `${model} stream=${stream}: ${res.text}`);
            assert.equal(res.body.error.code, 'proxy_refused', `${model}: ${res.text}`);
            assert.match(res.body.error.message, /egress proxy refused .* \(407\): it asks for credentials/);
          }
        }
        assert.deepEqual(Object.fromEntries(Object.entries(fakes).map(([name, fake]) => [name, fake.requests?.length])), reached, 'no upstream was reached');
        const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-proxy-pull-'));
        await assert.rejects(pullModel(`${fakes.openai.url}/model.gguf`, { cacheDir, progress: false }), (err) => {
          assert.match(err.message, new RegExp(`through the egress proxy ${refusing.url}`));
          return true;
        });
      } finally {
        await server.close();
      }
    });
    assert.ok(refusing.tunnels.length >= 7, refusing.tunnels.join(', '));
  } finally {
    await refusing.close();
  }
});

test('credentials in the proxy URL answer a proxy that asks for them, for every provider', async () => {
  const guarded = await startConnectProxy({ credentials: 'egress-user:p@ss w0rd' });
  try {
    // Percent-encoded, as a URL needs them.
    await askEachThrough(guarded, guarded.url.replace('http://', `http://egress-user:${encodeURIComponent('p@ss w0rd')}@`));
  } finally {
    await guarded.close();
  }
});

test('a proxy written host:port, as curl takes it, works for every provider; one that is no URL stops the start, naming the variable only', async () => {
  proxy.tunnels.length = 0;
  await askEachThrough(proxy, proxy.url.replace('http://', ''));

  await withEnv({ HTTPS_PROXY: 'http://user:s3cret@proxy.example:99999' }, async () => {
    await assert.rejects(gateway(), (err) => {
      assert.equal(err.message, 'Invalid HTTPS_PROXY: not a proxy URL (expected http://host:port, or http://user:password@host:port)');
      return true;
    });
  });
});
