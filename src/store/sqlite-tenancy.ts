// TenancyStore on the SQLite store's database handle: its own table for organisation settings,
// and queries over api_keys and request_log.

import type Database from 'better-sqlite3';
import { statementCache, type StatementCache } from './sqlite-statements.js';
import { keyFromRow, logFromRow, requestLogWhere, usageSampleFromRow, USAGE_SAMPLE_COLUMNS, type KeyRow, type LogRow, type UsageSampleRow } from './rows.js';
import type { ApiKeyRecord, RequestLogEntry } from './store.js';
import type { KeyPatch, OrganisationSettings, RequestLogFilter, TenancyStore, UsageSample } from './tenancy.js';

/** Baseline tables, frozen: a change to them is a step in src/store/migrations.ts. */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS organisation_settings (
  organisation TEXT PRIMARY KEY,
  limits TEXT,
  log_bodies INTEGER,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS request_log_key_time ON request_log (key_id, created_at);
CREATE INDEX IF NOT EXISTS request_log_time ON request_log (created_at);
`;

interface SettingsRow {
  organisation: string;
  limits: string | null;
  log_bodies: number | null;
  updated_at: number;
}

function settingsFromRow(row: SettingsRow): OrganisationSettings {
  return {
    organisation: row.organisation,
    limits: row.limits ? (JSON.parse(row.limits) as Record<string, unknown>) : undefined,
    logBodies: row.log_bodies === null ? undefined : row.log_bodies === 1,
    updatedAt: row.updated_at,
  };
}

export class SqliteTenancyStore implements TenancyStore {
  private statements?: StatementCache;

  constructor(
    private readonly db: Database.Database,
    /** Writes request-log rows still waiting in the store's batch, before the log is read. */
    private readonly flushRequestLog: () => void = () => undefined,
  ) {
    this.db.exec(SCHEMA);
  }

  private stmt(sql: string): Database.Statement {
    this.statements ??= statementCache(this.db);
    return this.statements(sql);
  }

  async keyById(id: string): Promise<ApiKeyRecord | undefined> {
    const row = this.stmt('SELECT * FROM api_keys WHERE id = ?').get(id) as KeyRow | undefined;
    return row ? keyFromRow(row) : undefined;
  }

  async updateKey(id: string, patch: KeyPatch): Promise<ApiKeyRecord | undefined> {
    const sets: string[] = [];
    const args: unknown[] = [];
    const set = (column: string, value: unknown) => (sets.push(`${column} = ?`), args.push(value));
    if (patch.limits !== undefined) set('limits', patch.limits === null ? null : JSON.stringify(patch.limits));
    if (patch.allowedModels !== undefined) set('allowed_models', patch.allowedModels === null ? null : JSON.stringify(patch.allowedModels));
    if (patch.expiresAt !== undefined) set('expires_at', patch.expiresAt);
    if (patch.name !== undefined) set('name', patch.name);
    if (sets.length) this.stmt(`UPDATE api_keys SET ${sets.join(', ')} WHERE id = ?`).run(...args, id);
    return this.keyById(id);
  }

  async organisationSettings(organisation: string): Promise<OrganisationSettings | undefined> {
    const row = this.stmt('SELECT * FROM organisation_settings WHERE organisation = ?').get(organisation) as SettingsRow | undefined;
    return row ? settingsFromRow(row) : undefined;
  }

  async setOrganisationSettings(
    organisation: string,
    patch: { limits?: Record<string, unknown> | null; logBodies?: boolean | null },
  ): Promise<OrganisationSettings> {
    const current = await this.organisationSettings(organisation);
    const limits = patch.limits === undefined ? current?.limits : patch.limits ?? undefined;
    const logBodies = patch.logBodies === undefined ? current?.logBodies : patch.logBodies ?? undefined;
    this
      .stmt(
        `INSERT INTO organisation_settings (organisation, limits, log_bodies, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (organisation) DO UPDATE SET limits = excluded.limits, log_bodies = excluded.log_bodies, updated_at = excluded.updated_at`,
      )
      .run(organisation, limits ? JSON.stringify(limits) : null, logBodies === undefined ? null : logBodies ? 1 : 0, Date.now());
    return (await this.organisationSettings(organisation))!;
  }

  async listOrganisations(): Promise<string[]> {
    this.flushRequestLog();
    const rows = this
      .stmt(
        `SELECT organisation FROM api_keys UNION SELECT organisation FROM organisation_settings
         UNION SELECT DISTINCT organisation FROM request_log ORDER BY organisation`,
      )
      .all() as Array<{ organisation: string }>;
    return rows.map((r) => r.organisation);
  }

  async spentSince(scope: { keyId?: string; organisation?: string }, since: number): Promise<number> {
    this.flushRequestLog();
    const { sql, args } = requestLogWhere({ keyId: scope.keyId, organisation: scope.organisation, since }, () => '?');
    const row = this.stmt(`SELECT COALESCE(SUM(cost), 0) AS spent FROM request_log ${sql}`).get(...args) as { spent: number };
    return row.spent;
  }

  async queryRequestLog(filter: RequestLogFilter): Promise<RequestLogEntry[]> {
    this.flushRequestLog();
    const { sql, args } = requestLogWhere(filter, () => '?');
    const rows = this.stmt(`SELECT * FROM request_log ${sql} ORDER BY created_at DESC, id LIMIT ?`).all(...args, filter.limit ?? 100) as LogRow[];
    return rows.map(logFromRow);
  }

  async usageSamples(filter: { organisation?: string; keyId?: string; model?: string; since?: number; until?: number }): Promise<UsageSample[]> {
    this.flushRequestLog();
    const { sql, args } = requestLogWhere(filter, () => '?');
    const rows = this
      .stmt(
        `SELECT ${USAGE_SAMPLE_COLUMNS}
         FROM request_log ${sql} ORDER BY created_at`,
      )
      .all(...args) as UsageSampleRow[];
    return rows.map(usageSampleFromRow);
  }
}
