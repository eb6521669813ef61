// yieldToIo lets I/O that arrived during synchronous work be read before the work goes on, even
// when called while I/O is being handled (where one setImmediate runs before the next poll).

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { yieldToIo } from '../dist/core/event-loop.js';

/** Inside a socket's data handler (the poll phase): other bytes arrive during busy work, then `pause` runs. */
async function arrivedBeforeResume(pause) {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = [];
  server.on('connection', (socket) => accepted.push(socket));
  const connect = () => new Promise((resolve) => { const s = net.connect(server.address().port, '127.0.0.1', () => resolve(s)); });
  const [first, second] = [await connect(), await connect()];
  while (accepted.length < 2) await new Promise((resolve) => setImmediate(resolve));
  let otherArrived = false;
  accepted[1].on('data', () => (otherArrived = true));
  const seen = new Promise((resolve) => {
    accepted[0].once('data', async () => {
      second.write('health');
      const until = Date.now() + 20; // the bytes reach the other socket while this handler still runs
      while (Date.now() < until);
      await pause();
      resolve(otherArrived);
    });
  });
  first.write('big body');
  try {
    return await seen;
  } finally {
    for (const s of [first, second, ...accepted]) s.destroy();
    server.close();
  }
}

test('yieldToIo resumes only after I/O that arrived during the work was read', async () => {
  assert.equal(await arrivedBeforeResume(yieldToIo), true);
});

test('(why it exists) one setImmediate from the same place resumes before that I/O is read', async () => {
  assert.equal(await arrivedBeforeResume(() => new Promise((resolve) => setImmediate(resolve))), false);
});
