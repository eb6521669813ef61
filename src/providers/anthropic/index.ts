// The Anthropic Messages provider, registered as `anthropic`.

export { AnthropicProvider, ANTHROPIC_CAPABILITIES, createAnthropicProvider } from './provider.js';
export { convertToAnthropicMessages } from './convert-messages.js';
export { prepareAnthropicRequest } from './build-request.js';
export { AnthropicStreamConverter } from './stream.js';
