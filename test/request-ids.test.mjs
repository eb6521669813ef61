// Request ids sort by creation time (the request log's primary key stays append-only) and stay unique.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newRequestId } from '../dist/core/gateway.js';

test('request ids: prefix, 24 characters, creation-time order across milliseconds, no repeats', () => {
  const ids = [];
  let lastTime;
  while (ids.length < 20) {
    // One id per millisecond, judged by the id's own time part (within one millisecond the order is
    // random by design): ids of different milliseconds must sort in creation order.
    const id = newRequestId();
    const time = id.slice('req-'.length, 'req-'.length + 9);
    if (time === lastTime) continue;
    lastTime = time;
    ids.push(id);
  }
  for (const id of ids) assert.match(id, /^req-[0-9a-z]{9}[0-9a-f]{15}$/);
  assert.deepEqual([...ids].sort(), ids);
  assert.match(newRequestId('run'), /^run-[0-9a-z]{9}[0-9a-f]{15}$/);
  const many = Array.from({ length: 100_000 }, () => newRequestId());
  assert.equal(new Set(many).size, many.length);
});
