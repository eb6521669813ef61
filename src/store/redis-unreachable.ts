// What a Redis-backed step answers when Redis cannot be reached: a 503 that says what could not
// be done and why, and asks for a retry in a second (ioredis reconnects by itself).

import { GatewayError } from '../core/errors.js';

/** A `.catch` handler: `failed` says what could not be done ("Rate limits cannot be checked"). */
export function redisUnreachable(failed: string, code: string): (err: unknown) => never {
  return (err) => {
    throw new GatewayError('unavailable', `${failed}: Redis is unreachable (${(err as Error).message})`, {
      code,
      retryAfter: 1,
      retryable: false,
      cause: err,
    });
  };
}
