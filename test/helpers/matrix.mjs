// The golden matrix's shared rig: the real server with one model per provider — openai,
// anthropic and bedrock behind their loopback fakes, local on the tiny random-weight model —
// and the recorded upstream streams and expected client streams under test/fixtures/.
//
// Routing has no retries, no backoff and no circuit breaker, so an upstream error reaches the
// client at once (a retried error would consume the next queued scenario and hide the case).
//
//   const rig = await startMatrix();
//   rig.url; rig.openai / rig.anthropic / rig.bedrock   (the fakes: enqueue(), requests)
//   rig.queue('anthropic', 'text')                      (queues the recorded upstream stream of a case)
//   await rig.close();

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeOpenAI } from './fake-openai-upstream.mjs';
import { startFakeAnthropic } from './fake-anthropic-upstream.mjs';
import { startFakeBedrock } from './fake-bedrock-upstream.mjs';
import { ensureTestModel } from './model.mjs';
import { startServer } from './server.mjs';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

const BEDROCK_ACCESS_KEY_ID = 'AKIDMATRIXTEST';
const BEDROCK_SECRET = 'matrix/fake+secret/key';
// The Bedrock provider reads the secret from the process environment (the AWS chain does too).
process.env.SB_MATRIX_BEDROCK_SECRET = BEDROCK_SECRET;

/** The model id each provider is reached under. */
export const MODELS = { openai: 'm-openai', anthropic: 'm-anthropic', bedrock: 'm-bedrock', local: 'm-local' };
export const REMOTE_PROVIDERS = ['openai', 'anthropic', 'bedrock'];

export function readJsonFixture(relative) {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, relative), 'utf8'));
}

/**
 * What each fake plays for a matrix case: a recorded stream (a fixture file of the provider) or
 * an HTTP error as the provider's upstream sends it.
 */
export const UPSTREAM = {
  openai: {
    text: { type: 'chunks', chunks: 'openai/text.json' },
    'tool-call': { type: 'chunks', chunks: 'openai/tool-call.json' },
    'two-tool-calls': { type: 'chunks', chunks: 'openai/two-tool-calls.json' },
    usage: { type: 'chunks', chunks: 'openai/cache-usage.json' },
    reasoning: { type: 'chunks', chunks: 'openai/reasoning.json' },
    'error-before': { type: 'error', status: 429, headers: { 'retry-after': '0' } },
    'error-after': { type: 'chunks', chunks: 'openai/error-mid-stream.json', done: false },
    // the role chunk and "Hello fro", then the TCP connection is destroyed
    reset: { type: 'reset', afterChunks: 2 },
  },
  anthropic: {
    text: { fixture: 'text.sse' },
    'tool-call': { fixture: 'tool-call.sse' },
    'two-tool-calls': { fixture: 'two-tool-calls.sse' },
    usage: { fixture: 'cache-usage.sse' },
    reasoning: { fixture: 'thinking.sse' },
    'error-before': { status: 529, error: { type: 'overloaded_error', message: 'Overloaded' } },
    'error-after': { fixture: 'error-overloaded.sse' },
    // message_start, content_block_start, ping, "Hello", then a TCP reset
    reset: { fixture: 'text.sse', fault: 'reset-after', faultAfter: 4 },
  },
  bedrock: {
    text: { fixture: 'text.json' },
    'tool-call': { fixture: 'tool-call.json' },
    'two-tool-calls': { fixture: 'two-tool-calls.json' },
    usage: { fixture: 'cache-usage.json' },
    reasoning: { fixture: 'reasoning.json' },
    'error-before': { error: 'ThrottlingException' },
    'error-after': { fixture: 'throttled-mid-stream.json' },
    // messageStart, "Hello", ", world", then the HTTP/2 stream is reset (NGHTTP2_INTERNAL_ERROR)
    reset: { fixture: 'text.json', fault: 'reset-after', faultAfter: 3 },
  },
};

/** The error a connection cut mid-stream becomes: kind upstream_5xx, with this code and message. */
export const RESET_ERROR = {
  openai: { code: 'upstream_connection_failed', message: /^Upstream connection failed/ },
  anthropic: { code: 'upstream_connection_error', message: /^The connection to Anthropic failed/ },
  bedrock: { code: 'upstream_connection_error', message: /^The Bedrock call failed/ },
};
/** The text the client has seen when the connection is cut (see UPSTREAM[provider].reset). */
export const RESET_TEXT = { openai: 'Hello fro', anthropic: 'Hello', bedrock: 'Hello, world' };

export async function startMatrix() {
  const [openai, anthropic, bedrock] = await Promise.all([
    startFakeOpenAI(),
    startFakeAnthropic({ apiKey: 'sk-ant-matrix' }),
    startFakeBedrock({ accessKeyId: BEDROCK_ACCESS_KEY_ID, secretAccessKey: BEDROCK_SECRET }),
  ]);
  const server = await startServer({
    env: { MATRIX_OPENAI_KEY: 'sk-openai-matrix', MATRIX_ANTHROPIC_KEY: 'sk-ant-matrix' },
    config: {
      router: { retries: 0, backoff: { baseMs: 0, maxMs: 0, maxRetryAfterMs: 0 }, breaker: { failureThreshold: 0 } },
      local: { threads: 1, parallel: 2, contextSize: 1024, gpu: false },
      models: [
        { id: MODELS.openai, provider: 'openai', model: 'gpt-4o-mini', baseUrl: openai.url, apiKeyEnv: 'MATRIX_OPENAI_KEY', },
        { id: MODELS.anthropic, provider: 'anthropic', model: 'claude-sonnet-4-5', baseUrl: anthropic.url, apiKeyEnv: 'MATRIX_ANTHROPIC_KEY' },
        {
          id: MODELS.bedrock,
          provider: 'bedrock',
          model: 'anthropic.claude-3-7-sonnet-20250219-v1:0',
          baseUrl: bedrock.url,
          region: 'eu-west-3',
          options: { accessKeyId: BEDROCK_ACCESS_KEY_ID, secretAccessKeyEnv: 'SB_MATRIX_BEDROCK_SECRET' },
        },
        { id: MODELS.local, provider: 'local', model: ensureTestModel(), contextLength: 1024 },
      ],
    },
  });

  const fakes = { openai, anthropic, bedrock };
  return {
    url: server.url,
    server,
    ...fakes,
    /** Queues the upstream answer of `matrixCase` on `provider`'s fake. */
    queue(provider, matrixCase) {
      const scenario = UPSTREAM[provider][matrixCase];
      if (!scenario) throw new Error(`no upstream recording for ${provider} × ${matrixCase}`);
      fakes[provider].enqueue(scenario.chunks ? { ...scenario, chunks: readJsonFixture(scenario.chunks) } : scenario);
    },
    /** The body the provider's fake received last. */
    lastUpstreamBody(provider) {
      return fakes[provider].requests.at(-1)?.body;
    },
    async close() {
      await server.close();
      await Promise.all([openai.close(), anthropic.close(), bedrock.close()]);
    },
  };
}
