// HMAC-signed, expiring download URLs: the signature covers the path and the expiry, so
// neither can be changed without the secret.

import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { safeEqual } from '../keys.js';
import { makeDir } from '../make-dir.js';

export function signPath(secret: string, pathname: string, expires: number): string {
  return createHmac('sha256', secret).update(`${pathname}\n${expires}`).digest('base64url');
}

export function signedUrl(secret: string, pathname: string, ttlSeconds: number, now = Date.now()): string {
  const expires = Math.floor(now / 1000) + ttlSeconds;
  return `${pathname}?expires=${expires}&signature=${signPath(secret, pathname, expires)}`;
}

export type SignatureCheck = 'ok' | 'expired' | 'invalid';

export function checkSignature(secret: string, pathname: string, expires: unknown, signature: unknown, now = Date.now()): SignatureCheck {
  if (typeof expires !== 'string' || typeof signature !== 'string' || !/^\d+$/.test(expires)) return 'invalid';
  if (!safeEqual(signPath(secret, pathname, Number(expires)), signature)) return 'invalid';
  return Number(expires) * 1000 < now ? 'expired' : 'ok';
}

/** The secret from the env var, or one generated once into the data dir (kept across restarts). */
export function loadSigningSecret(dataDir: string, env: NodeJS.ProcessEnv, secretEnv?: string): string {
  const fromEnv = secretEnv ? env[secretEnv] : undefined;
  if (fromEnv) return fromEnv;
  const file = path.join(dataDir, 'artifact-secret');
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    makeDir(dataDir);
    const secret = randomBytes(32).toString('base64url');
    try {
      fs.writeFileSync(file, secret, { mode: 0o600, flag: 'wx' });
      return secret;
    } catch {
      // Another process sharing the data dir wrote it first: use theirs.
      return fs.readFileSync(file, 'utf8').trim();
    }
  }
}
