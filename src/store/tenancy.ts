// Storage for running many teams on one gateway: organisation settings, key limits, spend and
// usage queries over the request log. Owned by the limits/usage feature; a store exposes it as
// `store.tenancy`.

import type { ApiKeyRecord, RequestLogEntry } from './store.js';

export interface OrganisationSettings {
  organisation: string;
  /** Limits set through the admin API (a LimitSpec); absent means the config's. */
  limits?: Record<string, unknown>;
  /** Log request bodies for this organisation; absent means the config's (default off). */
  logBodies?: boolean;
  updatedAt: number;
}

export interface KeyPatch {
  limits?: Record<string, unknown> | null;
  allowedModels?: string[] | null;
  expiresAt?: number | null;
  name?: string | null;
}

export interface RequestLogFilter {
  organisation?: string;
  keyId?: string;
  model?: string;
  provider?: string;
  dialect?: string;
  status?: number;
  errorKind?: string;
  correlationId?: string;
  since?: number;
  until?: number;
  limit?: number;
}

/** The request-log columns usage aggregates over. */
export interface UsageSample {
  createdAt: number;
  organisation: string;
  keyId?: string;
  model?: string;
  provider?: string;
  status: number;
  latencyMs: number;
  inputTokens: number;
  outputTokens: number;
  cost: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  serverToolUse?: Record<string, number>;
}

export interface TenancyStore {
  keyById(id: string): Promise<ApiKeyRecord | undefined>;
  updateKey(id: string, patch: KeyPatch): Promise<ApiKeyRecord | undefined>;
  organisationSettings(organisation: string): Promise<OrganisationSettings | undefined>;
  setOrganisationSettings(organisation: string, patch: { limits?: Record<string, unknown> | null; logBodies?: boolean | null }): Promise<OrganisationSettings>;
  /** Every organisation that has a key, a setting or a logged request. */
  listOrganisations(): Promise<string[]>;
  /** Money spent (request-log cost) by a key or an organisation since a time. */
  spentSince(scope: { keyId?: string; organisation?: string }, since: number): Promise<number>;
  queryRequestLog(filter: RequestLogFilter): Promise<RequestLogEntry[]>;
  usageSamples(filter: { organisation?: string; keyId?: string; model?: string; since?: number; until?: number }): Promise<UsageSample[]>;
}
