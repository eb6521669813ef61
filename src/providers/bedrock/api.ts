// Wire types of Bedrock Converse / ConverseStream, as the AWS SDK models them, and the model
// families whose extra request fields (reasoning, top_k) this provider knows.

export type {
  CachePointBlock,
  ContentBlock,
  ContentBlockDeltaEvent,
  ContentBlockStartEvent,
  ContentBlockStopEvent,
  ConverseStreamCommandInput,
  ConverseStreamCommandOutput,
  ConverseStreamMetadataEvent,
  ConverseStreamOutput,
  DocumentFormat,
  ImageFormat,
  InferenceConfiguration,
  Message as BedrockMessage,
  MessageStopEvent,
  StopReason as BedrockStopReason,
  SystemContentBlock,
  TokenUsage,
  Tool as BedrockTool,
  ToolChoice as BedrockToolChoice,
  ToolConfiguration,
  ToolResultContentBlock,
  VideoFormat,
} from '@aws-sdk/client-bedrock-runtime';

/** JSON-like value of `additionalModelRequestFields` (the SDK's DocumentType). */
export type AdditionalFields = Record<string, unknown>;

/**
 * Model family, for the fields Converse leaves to the model (`additionalModelRequestFields`):
 * - claude: `thinking: {type:'enabled', budget_tokens}`, `top_k`
 * - nova:   `reasoningConfig: {type:'enabled', maxReasoningEffort}`, `inferenceConfig.topK`
 * - other:  neither is known; reasoning is refused, top_k only with an explicit field path.
 */
export type BedrockModelFamily = 'claude' | 'nova' | 'other';

export function detectFamily(modelId: string, override: unknown): BedrockModelFamily {
  if (override === 'claude' || override === 'nova' || override === 'other') return override;
  const id = modelId.toLowerCase();
  if (id.includes('anthropic.claude') || id.includes('claude')) return 'claude';
  if (id.includes('amazon.nova') || id.includes('nova')) return 'nova';
  return 'other';
}

/** The SDK's JSON document type (tool input, input schema, additionalModelRequestFields). */
export type BedrockDocument = NonNullable<import('@aws-sdk/client-bedrock-runtime').ToolUseBlock['input']>;
