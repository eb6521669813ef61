// A gateway in front of a loopback Anthropic upstream (fake-anthropic-upstream.mjs), with the
// Anthropic SDK pointed at it: the set-up of the Messages tests that run against Anthropic's wire
// format. Build first: npx tsc -p tsconfig.json
import Anthropic from '@anthropic-ai/sdk';
import { createAnthropicProvider } from '../../dist/providers/anthropic/index.js';
import { startServer } from './server.mjs';
import { startFakeAnthropic } from './fake-anthropic-upstream.mjs';

/**
 * A model the fake serves first but not alone (an OpenAI-compatible deployment after it): the
 * gateway treats it as any other provider's (fields only Anthropic honours, context management).
 */
export function notAnthropicAlone(id, upstream) {
  return {
    id,
    deployments: [
      { name: 'a', provider: 'anthropic', model: 'claude-sonnet-4-5', baseUrl: upstream.url, apiKeyEnv: 'ANTHROPIC_TEST_KEY' },
      { name: 'b', provider: 'openai', model: 'gpt', baseUrl: 'http://127.0.0.1:9/v1' },
    ],
  };
}

/**
 * `models(claude, fake)` gives the config's models; `claude(id, extra)` is a model the fake serves
 * (its `model`, `baseUrl` and key filled in). The default model is `claude`; routing never retries.
 */
export async function startAnthropicGateway(models = (claude) => [claude('claude')]) {
  const fake = await startFakeAnthropic();
  const claude = (id, extra = {}) => ({ id, provider: 'anthropic', model: 'claude-sonnet-4-5', baseUrl: fake.url, apiKeyEnv: 'ANTHROPIC_TEST_KEY', ...extra });
  const server = await startServer({
    providers: { anthropic: createAnthropicProvider },
    env: { ANTHROPIC_TEST_KEY: 'sk-ant-test' },
    config: { router: { retries: 0 }, defaultModel: 'claude', models: models(claude, fake) },
  });
  const client = new Anthropic({ baseURL: server.url, apiKey: 'x', maxRetries: 0 });
  return {
    fake,
    server,
    client,
    async close() {
      await server.close();
      await fake.close();
    },
  };
}
