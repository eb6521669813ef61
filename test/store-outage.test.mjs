// The shared store's database goes away while the server runs: requests get a 503 in the
// dialect's shape with Retry-After (a client can retry it), /health/ready says why, the process
// keeps serving, and it recovers by itself when the database is back. PostgreSQL is reached
// through a loopback TCP relay that the test cuts and restores.
// Skipped without PostgreSQL unless SWITCHBOARD_REQUIRE_SERVICES is set.
// Build first: npx tsc -p tsconfig.json
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { startServer } from './helpers/server.mjs';
import { POSTGRES_URL, dropSchema, serviceSkip, uniqueSchema } from './helpers/services.mjs';

const skip = await serviceSkip('PostgreSQL', POSTGRES_URL);
const schema = uniqueSchema();
after(async () => {
  if (!skip) await dropSchema(schema);
});

/** A relay to PostgreSQL on a fixed port, which can be cut (every connection dropped, new ones refused) and restored. */
function relay() {
  const target = new URL(POSTGRES_URL);
  const sockets = new Set();
  let server;
  let port = 0;
  const listen = async () => {
    server = net.createServer((client) => {
      const upstream = net.connect(Number(target.port || 5432), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    port = server.address().port;
  };
  return {
    listen,
    get url() {
      const url = new URL(POSTGRES_URL);
      url.port = String(port);
      return url.toString();
    },
    async cut() {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

test("a database outage answers 503 + Retry-After in the dialect's shape, then the server recovers on its own", { skip, timeout: 60_000 }, async () => {
  const db = relay();
  await db.listen();
  const s = await startServer({ config: { store: { postgres: { url: db.url, schema } } } });
  try {
    const session = () => fetch(`${s.url}/v1/sessions/nothing-here`);
    assert.equal((await session()).status, 404, 'the store answers: no such session');

    await db.cut();
    const refused = await session();
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '1');
    const body = await refused.json();
    assert.equal(body.error.code, 'service_unavailable');
    assert.match(body.error.message, /unreachable \(ECONNREFUSED\)/);
    const messages = await fetch(`${s.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(messages.status, 503);
    assert.equal((await messages.json()).error.type, 'overloaded_error', "Anthropic's shape for a 503");
    const ready = await fetch(`${s.url}/health/ready`);
    assert.equal(ready.status, 503);
    assert.match((await ready.json()).checks.store, /ECONNREFUSED/);

    await db.listen();
    assert.equal((await session()).status, 404, 'served again once the database is back');
  } finally {
    await s.close();
    await db.cut();
  }
});
