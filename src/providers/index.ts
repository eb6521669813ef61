// Every provider the config can name. Adding one is one folder and one line here.

import type { ProviderFactory } from '../core/provider.js';
import { createAnthropicProvider } from './anthropic/index.js';
import { createBedrockProvider } from './bedrock/index.js';
import { createLocalProvider } from './local/index.js';
import { createOpenAIProvider } from './openai/index.js';

export const providerFactories: Record<string, ProviderFactory> = {
  local: createLocalProvider,
  openai: createOpenAIProvider,
  anthropic: createAnthropicProvider,
  bedrock: createBedrockProvider,
};
