// Starts a real Switchboard server in-process on a free loopback port, with a config written
// to a temporary data directory. Tests talk to it over HTTP only.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { stringify } from 'yaml';
import { loadConfig } from '../../dist/core/config.js';
import { createServer } from '../../dist/server/app.js';
import { providerFactories } from '../../dist/providers/index.js';

/**
 * @param {object} options
 * @param {object} [options.config]  config object (written as YAML and loaded like a user's file)
 * @param {Record<string, Function>} [options.providers]  extra provider factories (e.g. a scripted one)
 * @param {Record<string,string>} [options.env]  environment seen by the server (api keys, admin key)
 */
export async function startServer(options = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-test-'));
  const configFile = path.join(dataDir, 'switchboard.yaml');
  const config = { server: { host: '127.0.0.1', port: 0, logLevel: 'silent', ...(options.config?.server ?? {}) }, ...(options.config ?? {}) };
  config.server = { host: '127.0.0.1', port: 0, logLevel: 'silent', ...(options.config?.server ?? {}) };
  fs.writeFileSync(configFile, stringify(config));
  const env = options.env ?? {};
  const loaded = loadConfig({ configFile, dataDir }, env);
  const logLines = [];
  const logger = pino(
    { level: options.logLevel ?? 'info' },
    { write: (line) => logLines.push(line) },
  );
  const server = await createServer({
    config: loaded,
    env,
    logger,
    providers: { ...providerFactories, ...(options.providers ?? {}) },
  });
  const url = await server.listen();
  return {
    url,
    server,
    dataDir,
    logLines,
    async close() {
      await server.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** POSTs JSON and returns {status, headers, body (parsed when JSON), text}. */
export async function postJson(url, body, headers = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** Reads a whole SSE response and returns its events [{id, event, data}] and the raw text. */
export async function readSse(response) {
  const text = await response.text();
  const events = [];
  for (const block of text.split(/\n\n/)) {
    if (!block.trim()) continue;
    const event = { data: '' };
    const data = [];
    for (const line of block.split('\n')) {
      const i = line.indexOf(':');
      const field = i === -1 ? line : line.slice(0, i);
      const value = i === -1 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'data') data.push(value);
      else if (field === 'id' || field === 'event') event[field] = value;
    }
    event.data = data.join('\n');
    events.push(event);
  }
  return { events, text };
}
