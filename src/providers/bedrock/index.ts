// The Bedrock Converse provider, registered as `bedrock`.

export { BedrockProvider, bedrockCapabilities, createBedrockProvider } from './provider.js';
export { convertToBedrockMessages } from './convert-messages.js';
export { prepareBedrockRequest } from './build-request.js';
export { BedrockStreamConverter } from './stream.js';
