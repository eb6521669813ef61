// Async run ids: the client's own (≤128 characters of [A-Za-z0-9._-]) or a generated one.

import { randomBytes } from 'node:crypto';
import { badRequest } from '../errors.js';

const RUN_ID = /^[A-Za-z0-9._-]{1,128}$/;

export function checkRunId(id: string, param = 'message_id'): string {
  if (!RUN_ID.test(id)) throw badRequest('A message_id is 1-128 characters of letters, digits, ".", "_" and "-"', param, 'invalid_message_id');
  return id;
}

export function newRunId(): string {
  return `msg_${randomBytes(18).toString('base64url').replace(/[^A-Za-z0-9]/g, 'x')}`;
}
