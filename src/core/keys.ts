// API keys: random bearer tokens, stored only as sha256 hashes.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export function generateApiKey(): string {
  return `sb-${randomBytes(24).toString('base64url')}`;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function keyPrefix(key: string): string {
  return key.slice(0, 8);
}

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Whether a key still authenticates: not revoked, not expired (auth at the door, admission per call). */
export function keyActive(key: { revokedAt?: number; expiresAt?: number }, now = Date.now()): boolean {
  return !key.revokedAt && (!key.expiresAt || key.expiresAt > now);
}
