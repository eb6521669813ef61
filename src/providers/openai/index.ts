// The OpenAI-compatible upstream provider (OpenAI, vLLM, Ollama, llama.cpp server, Groq,
// OpenRouter…), registered as `openai`.

import type { ProviderFactory } from '../../core/provider.js';
import { OpenAIProvider } from './provider.js';

export const createOpenAIProvider: ProviderFactory = (env) => new OpenAIProvider(env.logger);

export { OpenAIProvider } from './provider.js';
export { readOptions, type OpenAIDeploymentOptions } from './options.js';
