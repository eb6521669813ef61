// Redis for what processes sharing a PostgreSQL store must share live: rate-limit windows and
// budget reservations, each checked and counted by one Lua script per request (atomic across
// every process; windows timed by Redis's own clock so the processes' clocks do not matter),
// fire-and-forget signals over pub/sub, and message threads (src/store/redis-threads.ts).

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { periodBounds } from '../core/limits/budget-ledger.js';
import { RedisThreadStore } from './redis-threads.js';
import { redisUnreachable } from './redis-unreachable.js';
import type { ThreadStore } from './threads.js';
import type {
  BudgetKeeper,
  BudgetLine,
  BudgetRefusal,
  BudgetTicket,
  Coordination,
  RateLimitScope,
  RateRejection,
  RateTicket,
  RateWindowState,
  SpentLoader,
} from './coordination.js';

const WINDOW_MS = 60_000;
/**
 * A request counts against `concurrent` until it ends or this long after it began: a process that
 * dies mid-request must not hold its slots for ever.
 */
const CONCURRENCY_LEASE_MS = 15 * 60_000;

// Per scope, four keys: requests (sorted set ticket → time), tokens (sorted set ticket → time),
// token counts (hash ticket → tokens), running (sorted set ticket → end of its lease).
const PRUNE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function prune(req, tok, cnt, run, now, window)
  local cutoff = now - window
  redis.call('ZREMRANGEBYSCORE', req, '-inf', cutoff)
  local expired = redis.call('ZRANGEBYSCORE', tok, '-inf', cutoff)
  for _, id in ipairs(expired) do redis.call('HDEL', cnt, id) end
  redis.call('ZREMRANGEBYSCORE', tok, '-inf', cutoff)
  redis.call('ZREMRANGEBYSCORE', run, '-inf', now)
end
local function seconds(ms)
  local s = math.ceil(ms / 1000)
  if s < 1 then return 1 end
  return s
end
`;

/** ARGV: ticket, prompt tokens, window ms, lease ms, then rpm, tpm, concurrent per scope (-1: none). */
const ADMIT = `${PRUNE}
local ticket, prompt, window, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local scopes = #KEYS / 4
local usedBy = {}
for i = 0, scopes - 1 do
  local req, tok, cnt, run = KEYS[i*4+1], KEYS[i*4+2], KEYS[i*4+3], KEYS[i*4+4]
  prune(req, tok, cnt, run, now, window)
  local used = 0
  for _, c in ipairs(redis.call('HVALS', cnt)) do used = used + tonumber(c) end
  usedBy[i] = used
  local rpm, tpm, concurrent = tonumber(ARGV[5+i*3]), tonumber(ARGV[6+i*3]), tonumber(ARGV[7+i*3])
  if rpm >= 0 and redis.call('ZCARD', req) >= rpm then
    local oldest = redis.call('ZRANGE', req, 0, 0, 'WITHSCORES')
    local retry = 1
    if #oldest > 0 then retry = seconds(tonumber(oldest[2]) + window - now) end
    return {i, 'rpm', retry, used}
  end
  if tpm >= 0 and used + prompt > tpm then
    -- When will enough of the oldest entries have left the window for this request to fit?
    local retry = math.ceil(window / 1000)
    local remaining = used
    local entries = redis.call('ZRANGE', tok, 0, -1, 'WITHSCORES')
    for j = 1, #entries, 2 do
      remaining = remaining - tonumber(redis.call('HGET', cnt, entries[j]) or '0')
      if remaining + prompt <= tpm then
        retry = seconds(tonumber(entries[j+1]) + window - now)
        break
      end
    end
    return {i, 'tpm', retry, used}
  end
  if concurrent >= 0 and redis.call('ZCARD', run) >= concurrent then
    return {i, 'concurrent', 1, used}
  end
end
for i = 0, scopes - 1 do
  local req, tok, cnt, run = KEYS[i*4+1], KEYS[i*4+2], KEYS[i*4+3], KEYS[i*4+4]
  redis.call('ZADD', req, now, ticket)
  redis.call('ZADD', tok, now, ticket)
  redis.call('HSET', cnt, ticket, prompt)
  redis.call('ZADD', run, now + lease, ticket)
  redis.call('PEXPIRE', req, window + 1000)
  redis.call('PEXPIRE', tok, window + 1000)
  redis.call('PEXPIRE', cnt, window + 1000)
  redis.call('PEXPIRE', run, lease + 1000)
end
-- Admitted: each scope's window now (requests, tokens, ms until the oldest request and the
-- oldest token entry leave it), for the rate-limit response headers.
local out = {-1}
for i = 0, scopes - 1 do
  local req, tok = KEYS[i*4+1], KEYS[i*4+2]
  local oldestReq = redis.call('ZRANGE', req, 0, 0, 'WITHSCORES')
  local oldestTok = redis.call('ZRANGE', tok, 0, 0, 'WITHSCORES')
  table.insert(out, redis.call('ZCARD', req))
  table.insert(out, usedBy[i] + prompt)
  table.insert(out, math.max(0, tonumber(oldestReq[2]) + window - now))
  table.insert(out, math.max(0, tonumber(oldestTok[2]) + window - now))
end
return out
`;

/** ARGV: ticket, real tokens. Frees the concurrency slot; the window keeps the request. */
const RELEASE = `
for i = 0, #KEYS / 4 - 1 do
  local tok, cnt, run = KEYS[i*4+2], KEYS[i*4+3], KEYS[i*4+4]
  redis.call('ZREM', run, ARGV[1])
  if redis.call('ZSCORE', tok, ARGV[1]) then redis.call('HSET', cnt, ARGV[1], ARGV[2]) end
end
return 1
`;

/** ARGV: ticket. As if the request had never been admitted. */
const WITHDRAW = `
for i = 0, #KEYS / 4 - 1 do
  local req, tok, cnt, run = KEYS[i*4+1], KEYS[i*4+2], KEYS[i*4+3], KEYS[i*4+4]
  redis.call('ZREM', req, ARGV[1])
  redis.call('ZREM', tok, ARGV[1])
  redis.call('HDEL', cnt, ARGV[1])
  redis.call('ZREM', run, ARGV[1])
end
return 1
`;

// Per budget line, one hash (spent, reserved) per scope, period and period start. Amounts are
// strings both ways: Lua numbers come back from Redis truncated to integers.
/** ARGV: reservation, then amount, seed ('' = none) and time to live (ms) per line. */
const RESERVE = `
local reservation = tonumber(ARGV[1])
for i = 1, #KEYS do
  local seed, ttl = ARGV[i*3], tonumber(ARGV[i*3+1])
  if redis.call('HEXISTS', KEYS[i], 'spent') == 0 then
    if seed == '' then return {-2, i - 1} end
    redis.call('HSET', KEYS[i], 'spent', seed, 'reserved', 0)
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
for i = 1, #KEYS do
  local amount = tonumber(ARGV[i*3-1])
  local spent = tonumber(redis.call('HGET', KEYS[i], 'spent'))
  local reserved = tonumber(redis.call('HGET', KEYS[i], 'reserved'))
  if spent + reserved + reservation > amount + 1e-12 then return {i - 1, tostring(spent), tostring(reserved)} end
end
for i = 1, #KEYS do redis.call('HINCRBYFLOAT', KEYS[i], 'reserved', ARGV[1]) end
return {-1}
`;

/** ARGV: reservation, cost. A line whose period has expired meanwhile is left alone. */
const SETTLE = `
for i = 1, #KEYS do
  if redis.call('HEXISTS', KEYS[i], 'spent') == 1 then
    local reserved = tonumber(redis.call('HINCRBYFLOAT', KEYS[i], 'reserved', -tonumber(ARGV[1])))
    if reserved < 0 then redis.call('HSET', KEYS[i], 'reserved', 0) end
    redis.call('HINCRBYFLOAT', KEYS[i], 'spent', ARGV[2])
  end
end
return 1
`;

interface ScriptCommands {
  switchboardReserve(numKeys: number, ...args: Array<string | number>): Promise<[number, string?, string?]>;
  switchboardSettle(numKeys: number, ...args: Array<string | number>): Promise<number>;
  /** [-1, then per scope: requests, tokens, requestsResetMs, tokensResetMs] when admitted; else [scope, limit, retryAfter, usedTokens]. */
  switchboardAdmit(numKeys: number, ...args: Array<string | number>): Promise<[number, ...Array<string | number>]>;
  switchboardRelease(numKeys: number, ...args: Array<string | number>): Promise<number>;
  switchboardWithdraw(numKeys: number, ...args: Array<string | number>): Promise<number>;
}

export interface RedisCoordinationOptions {
  keyPrefix: string;
  /** Where a failed release/withdraw or a dropped connection is reported (they never throw). */
  onError?: (err: Error) => void;
}

/** Limits that cannot be checked are not waived: the call is refused with a 503 that says why. */
const unreachable = (what: string) => redisUnreachable(`${what} cannot be checked`, 'limits_unavailable');

/** An outage fails every publish and release: one warning per interval says so, with the count. */
const WARNING_INTERVAL_MS = 10_000;

export function warnAtMostEvery(intervalMs: number): (err: Error) => void {
  let last = 0;
  let suppressed = 0;
  return (err) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    const more = suppressed ? ` (and ${suppressed} more failures since the last warning)` : '';
    last = now;
    suppressed = 0;
    process.emitWarning(`Redis: ${err.message}${more}`);
  };
}

/** The request's member name in its scopes' sets, and those sets' keys. */
interface RedisRateTicket {
  readonly id: string;
  readonly keys: string[];
}

interface RedisBudgetTicket extends BudgetTicket {
  readonly keys: string[];
}

export class RedisCoordination implements Coordination {
  private readonly listeners = new Map<string, Set<(message: string) => void>>();
  private readonly onError: (err: Error) => void;
  readonly threads: ThreadStore;

  private constructor(
    private readonly commands: Redis & ScriptCommands,
    private readonly subscriber: Redis,
    private readonly prefix: string,
    onError: ((err: Error) => void) | undefined,
  ) {
    this.onError = onError ?? warnAtMostEvery(WARNING_INTERVAL_MS);
    this.threads = new RedisThreadStore(commands, prefix, (err) => this.onError(err));
  }

  /** Connects both connections (commands, and pub/sub, which Redis keeps apart) and subscribes. */
  static async connect(url: string, options: RedisCoordinationOptions): Promise<RedisCoordination> {
    const commands = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 }) as Redis & ScriptCommands;
    const subscriber = new Redis(url, { lazyConnect: true });
    commands.defineCommand('switchboardAdmit', { lua: ADMIT });
    commands.defineCommand('switchboardRelease', { lua: RELEASE });
    commands.defineCommand('switchboardWithdraw', { lua: WITHDRAW });
    commands.defineCommand('switchboardReserve', { lua: RESERVE });
    commands.defineCommand('switchboardSettle', { lua: SETTLE });
    const coordination = new RedisCoordination(commands, subscriber, options.keyPrefix, options.onError);
    commands.on('error', (err: Error) => coordination.onError(err));
    subscriber.on('error', (err: Error) => coordination.onError(err));
    // ioredis rejects a failed connect with "Connection is closed."; the cause is in its error events.
    let connectError: Error | undefined;
    const remember = (err: Error) => {
      connectError ??= err;
    };
    commands.on('error', remember);
    try {
      await Promise.all([commands.connect(), subscriber.connect()]).catch((err: Error) => {
        throw connectError ?? err;
      });
      // One pattern for every topic: no topic can miss messages sent before its own SUBSCRIBE.
      subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => coordination.deliver(channel, message));
      await subscriber.psubscribe(`${options.keyPrefix}signal:*`);
    } catch (err) {
      commands.disconnect();
      subscriber.disconnect();
      throw err;
    } finally {
      commands.off('error', remember);
    }
    return coordination;
  }

  private keys(scopes: readonly string[]): string[] {
    return scopes.flatMap((id) => {
      const base = `${this.prefix}rate:${id}:`;
      return [`${base}requests`, `${base}tokens`, `${base}token-counts`, `${base}running`];
    });
  }

  async admit(scopes: RateLimitScope[], promptTokens: number): Promise<{ ticket: RateTicket; windows: RateWindowState[] } | { rejected: RateRejection }> {
    const keys = this.keys(scopes.map((s) => s.id));
    const ticket: RedisRateTicket = { id: randomUUID(), keys };
    const limits = scopes.flatMap((s) => [s.rpm ?? -1, s.tpm ?? -1, s.concurrent ?? -1]);
    const [scope, ...rest] = await this.commands
      .switchboardAdmit(keys.length, ...keys, ticket.id, promptTokens, WINDOW_MS, CONCURRENCY_LEASE_MS, ...limits)
      .catch(unreachable('Rate limits'));
    if (scope < 0) {
      const n = rest.map(Number);
      const windows = scopes.map((_, i) => ({ requests: n[i * 4]!, tokens: n[i * 4 + 1]!, requestsResetMs: n[i * 4 + 2]!, tokensResetMs: n[i * 4 + 3]! }));
      return { ticket, windows };
    }
    const [limit, retryAfter, usedTokens] = rest as [string, number?, number?];
    return { rejected: { scope, limit: limit as RateRejection['limit'], retryAfter: retryAfter ?? 1, usedTokens: usedTokens ?? 0 } };
  }

  release(ticket: RateTicket, actualTokens: number): void {
    const { id, keys } = ticket as RedisRateTicket;
    this.commands.switchboardRelease(keys.length, ...keys, id, actualTokens).catch(this.onError);
  }

  withdraw(ticket: RateTicket): void {
    const { id, keys } = ticket as RedisRateTicket;
    this.commands.switchboardWithdraw(keys.length, ...keys, id).catch(this.onError);
  }

  budgets(loadSpent: SpentLoader): BudgetKeeper {
    return {
      reserve: (lines, reservation) => this.reserve(lines, reservation, loadSpent),
      settle: (ticket, cost) => this.settle(ticket as RedisBudgetTicket, cost),
    };
  }

  private async reserve(lines: BudgetLine[], reservation: number, loadSpent: SpentLoader): Promise<{ ticket: BudgetTicket } | { refused: BudgetRefusal }> {
    const now = Date.now();
    const periods = lines.map((line) => periodBounds(line.period, now));
    const keys = lines.map((line, i) => `${this.prefix}budget:${line.scope}:${line.period}:${periods[i]!.start}`);
    const seeds: string[] = lines.map(() => '');
    // A period Redis has not seen yet (or has lost) starts from the request log's sum; the
    // script asks for it, and a second call brings it (seeding twice is harmless: HSET only
    // happens while the line is absent).
    for (let attempt = 0; attempt < 2; attempt++) {
      const args = lines.flatMap((line, i) => [line.amount, seeds[i]!, periods[i]!.end - now + 86_400_000]);
      const [code, second, third] = await this.commands.switchboardReserve(keys.length, ...keys, reservation, ...args).catch(unreachable('Budgets'));
      if (code === -1) {
        const ticket: RedisBudgetTicket = { reservation, keys };
        return { ticket };
      }
      if (code >= 0) return { refused: { line: code, spent: Number(second), reserved: Number(third) } };
      // Seeds for every line at once: one more round trip, whichever lines Redis lacks.
      for (const [i, line] of lines.entries()) seeds[i] = String(await loadSpent(line.scope, periods[i]!.start));
    }
    throw new Error('Redis budget line could not be seeded');
  }

  private settle(ticket: RedisBudgetTicket, cost: number): void {
    this.commands.switchboardSettle(ticket.keys.length, ...ticket.keys, ticket.reservation, cost).catch(this.onError);
  }

  async publish(topic: string, message: string): Promise<void> {
    await this.commands.publish(`${this.prefix}signal:${topic}`, message).catch(this.onError);
  }

  subscribe(topic: string, listener: (message: string) => void): () => void {
    const channel = `${this.prefix}signal:${topic}`;
    let set = this.listeners.get(channel);
    if (!set) this.listeners.set(channel, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  private deliver(channel: string, message: string): void {
    for (const listener of this.listeners.get(channel) ?? []) listener(message);
  }

  async ping(): Promise<void> {
    await this.commands.ping();
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.commands.quit(), this.subscriber.quit()]);
  }
}
