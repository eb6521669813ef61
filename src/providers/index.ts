// Every provider the config can name. Adding one is one folder and one line here.

import type { ProviderFactory } from '../core/provider.js';
import { createOpenAIProvider } from './openai/index.js';

export const providerFactories: Record<string, ProviderFactory> = {
  openai: createOpenAIProvider,
};
