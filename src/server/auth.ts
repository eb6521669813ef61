// Bearer (or x-api-key) authentication. Keys are looked up by hash; with no active key at all
// the server runs open (and then listens on loopback only, enforced at start).

import type { FastifyRequest } from 'fastify';
import { GatewayError } from '../core/errors.js';
import { hashApiKey, safeEqual } from '../core/keys.js';
import type { ApiKeyRecord, Store } from '../store/store.js';

export interface AuthContext {
  /** 'key' when a valid key was given; 'open' when the server has no keys; 'admin' for the admin key. */
  mode: 'key' | 'open' | 'admin';
  organisation: string;
  key?: ApiKeyRecord;
}

export const OPEN_ORGANISATION = 'default';

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string') {
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (match) return match[1]!.trim();
  }
  const apiKey = request.headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.length > 0 ? apiKey : undefined;
}

export class Authenticator {
  /** Cached "are there keys?" answer; refreshed on a short interval so CLI-created keys take effect. */
  private activeKeys: { count: number; at: number } | undefined;

  constructor(
    private readonly store: Store,
    private readonly adminKey: string | undefined,
    private readonly recheckMs = 1000,
  ) {}

  async hasKeys(): Promise<boolean> {
    const now = Date.now();
    if (!this.activeKeys || now - this.activeKeys.at > this.recheckMs) {
      this.activeKeys = { count: await this.store.countActiveKeys(), at: now };
    }
    return this.activeKeys.count > 0;
  }

  invalidate(): void {
    this.activeKeys = undefined;
  }

  isAdminToken(token: string | undefined): boolean {
    return !!token && !!this.adminKey && safeEqual(token, this.adminKey);
  }

  async authenticate(request: FastifyRequest): Promise<AuthContext> {
    const token = bearerToken(request);
    if (this.isAdminToken(token)) return { mode: 'admin', organisation: OPEN_ORGANISATION };
    if (token) {
      const key = await this.store.findKeyByHash(hashApiKey(token));
      if (key && !key.revokedAt && (!key.expiresAt || key.expiresAt > Date.now())) {
        return { mode: 'key', organisation: key.organisation, key };
      }
      if (key || (await this.hasKeys())) {
        throw new GatewayError('auth', 'Incorrect API key provided', { code: key ? 'api_key_revoked_or_expired' : 'invalid_api_key' });
      }
    }
    if (await this.hasKeys()) {
      throw new GatewayError('auth', 'Missing API key: send it as "Authorization: Bearer <key>"', { code: 'missing_api_key' });
    }
    return { mode: 'open', organisation: OPEN_ORGANISATION };
  }
}
