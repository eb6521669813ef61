// The tiny random-weight test model (scripts/make-test-model.mjs): its path, generated on demand,
// and the local provider started on it (from dist/, so build first).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const TEST_MODEL_PATH = path.resolve(repoRoot, process.env.SWITCHBOARD_TEST_MODEL ?? '.cache/test-model/tiny-qwen2.gguf');

/** Generates the model if it is not there yet (idempotent) and returns its path. */
export function ensureTestModel() {
  if (!fs.existsSync(TEST_MODEL_PATH)) {
    execFileSync(process.execPath, [path.join(repoRoot, 'scripts/make-test-model.mjs'), TEST_MODEL_PATH], { stdio: 'inherit' });
  }
  return TEST_MODEL_PATH;
}

const silentLogger = pino({ level: 'silent' });

export async function startLocalProvider(local = {}) {
  const modelPath = ensureTestModel();
  const config = { local: { threads: 1, parallel: 4, queueLimit: 8, gpu: false, contextSize: 2048, ...local } };
  const { createLocalProvider } = await import('../../dist/providers/local/index.js');
  const provider = createLocalProvider({ config, logger: silentLogger, dataDir: '.cache/test-data' });
  const deployment = { name: 'local-test', provider: 'local', model: modelPath, weight: 1, maxConcurrent: 0, options: {} };
  const model = { id: 'tiny-qwen2' };

  function open(request, signal = new AbortController().signal, target = deployment) {
    return provider.stream({ model: 'tiny-qwen2', ...request }, { model, deployment: target, signal, requestId: 'test', logger: silentLogger });
  }

  /** Runs a request (on another deployment if given); returns its parts, text, reasoning, tool calls and finish part. */
  async function run(request, signal, target) {
    const parts = [];
    for await (const part of open(request, signal, target)) parts.push(part);
    return summarize(parts);
  }

  return { provider, deployment, model, open, run };
}

export function summarize(parts) {
  const toolCalls = [];
  for (const p of parts) {
    if (p.type === 'tool-input-start') toolCalls.push({ id: p.id, name: p.toolName, arguments: '' });
    if (p.type === 'tool-input-delta') toolCalls.find((c) => c.id === p.id).arguments += p.delta;
  }
  return {
    parts,
    types: parts.map((p) => p.type),
    text: parts.filter((p) => p.type === 'text-delta').map((p) => p.delta).join(''),
    reasoning: parts.filter((p) => p.type === 'reasoning-delta').map((p) => p.delta).join(''),
    toolCalls,
    finish: parts.find((p) => p.type === 'finish'),
  };
}

export const user = (text) => ({ role: 'user', content: [{ type: 'text', text }] });
export const system = (text) => ({ role: 'system', content: [{ type: 'text', text }] });
