// Bearer (or x-api-key) authentication. Keys are looked up by hash; with no active key at all
// the server runs open (and then listens on loopback only, enforced at start). A server started
// where open mode is refused (a network address) never becomes open: when its last key is
// revoked or expires, requests without a valid key are still refused.

import type { FastifyRequest } from 'fastify';
import { GatewayError } from '../core/errors.js';
import { hashApiKey, keyActive, safeEqual } from '../core/keys.js';
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
  /** Running open is refused where this server listens (set at start). */
  private openRefused = false;

  constructor(
    private readonly store: Store,
    private readonly adminKey: string | undefined,
  ) {}

  /** Called before listening where open mode would be refused (a network address, cors '*'). */
  refuseOpenMode(): void {
    this.openRefused = true;
  }

  /** Asked per request (an indexed COUNT): keys created by the CLI in another process apply at once. */
  async hasKeys(): Promise<boolean> {
    return (await this.store.countActiveKeys()) > 0;
  }

  isAdminToken(token: string | undefined): boolean {
    return !!token && !!this.adminKey && safeEqual(token, this.adminKey);
  }

  async authenticate(request: FastifyRequest): Promise<AuthContext> {
    const token = bearerToken(request);
    if (this.isAdminToken(token)) return { mode: 'admin', organisation: OPEN_ORGANISATION };
    if (token) {
      const key = await this.store.findKeyByHash(hashApiKey(token));
      if (key && keyActive(key)) {
        return { mode: 'key', organisation: key.organisation, key };
      }
      if (key || this.openRefused || (await this.hasKeys())) {
        throw new GatewayError('auth', 'Incorrect API key provided', { code: key ? 'api_key_revoked_or_expired' : 'invalid_api_key' });
      }
    }
    if (this.openRefused || (await this.hasKeys())) {
      throw new GatewayError('auth', 'Missing API key: send it as "Authorization: Bearer <key>" or "x-api-key: <key>"', { code: 'missing_api_key' });
    }
    return { mode: 'open', organisation: OPEN_ORGANISATION };
  }
}
