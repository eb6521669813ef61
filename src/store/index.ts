// Opens the configured store. SQLite in the data directory is the embedded default.

import type { Config } from '../core/config.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './store.js';

/** `serving`: the store of a long-running server (WAL checkpoints move to a worker thread). */
export async function openStore(_config: Config, dataDir: string, options: { serving?: boolean } = {}): Promise<Store> {
  return SqliteStore.inDataDir(dataDir, { backgroundCheckpoints: options.serving === true });
}
