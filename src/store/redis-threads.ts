// Message threads in Redis, for processes sharing a store: a continue may reach any of them. One
// hash per reply id (organisation, state, conversation) that Redis expires; each step is one Lua
// script, so two processes continuing the same reply cannot both claim it.

import type { Redis } from 'ioredis';
import { redisUnreachable } from './redis-unreachable.js';
import { MAX_THREAD_CHARACTERS, THREAD_TTL_MS, type ThreadRefusal, type ThreadStore } from './threads.js';

/** KEYS: the reply's hash. ARGV: organisation. */
const CLAIM = `
local t = redis.call('HMGET', KEYS[1], 'organisation', 'state', 'conversation')
if not t[1] or t[1] ~= ARGV[1] then return {'not_found'} end
if t[2] == 'continuing' then return {'in_flight'} end
if t[2] == 'continued' then return {'continued'} end
redis.call('HSET', KEYS[1], 'state', 'continuing')
return {'ok', t[3]}
`;

/** KEYS: the new reply's hash, then the continued one's if any. ARGV: organisation, conversation ('' = too big to hold), ttl. */
const HOLD = `
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'organisation', ARGV[1], 'state', 'open', 'conversation', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
if #KEYS > 1 and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'state', 'continued')
  redis.call('HDEL', KEYS[2], 'conversation')
end
return 1
`;

/** KEYS: the reply's hash. */
const RELEASE = `
if redis.call('HGET', KEYS[1], 'state') == 'continuing' then redis.call('HSET', KEYS[1], 'state', 'open') end
return 1
`;

interface ThreadCommands {
  switchboardThreadClaim(numKeys: number, ...args: string[]): Promise<[string, string?]>;
  switchboardThreadHold(numKeys: number, ...args: Array<string | number>): Promise<number>;
  switchboardThreadRelease(numKeys: number, ...args: string[]): Promise<number>;
}

export class RedisThreadStore implements ThreadStore {
  private readonly commands: Redis & ThreadCommands;

  /** `commands`: a connection for commands (not pub/sub); the scripts are defined on it. */
  constructor(
    commands: Redis,
    private readonly prefix: string,
    private readonly onError: (err: Error) => void,
  ) {
    this.commands = commands as Redis & ThreadCommands;
    this.commands.defineCommand('switchboardThreadClaim', { lua: CLAIM });
    this.commands.defineCommand('switchboardThreadHold', { lua: HOLD });
    this.commands.defineCommand('switchboardThreadRelease', { lua: RELEASE });
  }

  private key(id: string): string {
    return `${this.prefix}thread:${id}`;
  }

  async claim(organisation: string, id: string): Promise<{ conversation: string } | { refused: ThreadRefusal }> {
    // Without Redis the conversation is unknown: a retry may find it back.
    const [outcome, conversation] = await this.commands
      .switchboardThreadClaim(1, this.key(id), organisation)
      .catch(redisUnreachable('Message threads cannot be read', 'threads_unavailable'));
    return outcome === 'ok' ? { conversation: conversation ?? '' } : { refused: outcome as ThreadRefusal };
  }

  async hold(organisation: string, id: string, conversation: string, previousId?: string): Promise<void> {
    const keys = previousId === undefined ? [this.key(id)] : [this.key(id), this.key(previousId)];
    // Too big to hold is not held: its continue is a thread_not_found, and the SDK replays.
    const held = conversation.length > MAX_THREAD_CHARACTERS ? '' : conversation;
    await this.commands.switchboardThreadHold(keys.length, ...keys, organisation, held, THREAD_TTL_MS);
  }

  async release(id: string): Promise<void> {
    await this.commands.switchboardThreadRelease(1, this.key(id)).catch(this.onError);
  }
}
