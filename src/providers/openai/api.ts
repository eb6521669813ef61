// Wire types of OpenAI's Chat Completions API, as far as the gateway reads or writes them.
// Upstreams that only claim compatibility (vLLM, Ollama, llama.cpp, Groq, OpenRouter) add a few
// fields of their own; those we honour are marked.

export interface OpenAITextContent {
  type: 'text';
  text: string;
}

export interface OpenAIImageContent {
  type: 'image_url';
  image_url: { url: string; detail?: 'auto' | 'low' | 'high' };
}

/** OpenAI's file input (PDFs), sent as a data URI. */
export interface OpenAIFileContent {
  type: 'file';
  file: { filename?: string; file_data: string };
}

export type OpenAIUserContent = OpenAITextContent | OpenAIImageContent | OpenAIFileContent;

export interface OpenAIToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export type OpenAIChatMessage =
  | { role: 'system'; content: string; name?: string }
  | { role: 'user'; content: string | OpenAIUserContent[]; name?: string }
  | { role: 'assistant'; content: string | null; name?: string; tool_calls?: OpenAIToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string; name?: string };

export interface OpenAIFunctionTool {
  type: 'function';
  function: { name: string; description?: string; parameters: Record<string, unknown> };
}

export type OpenAIToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };

export type OpenAIResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name: string; schema: Record<string, unknown>; strict?: boolean } };

/** OpenRouter's unified reasoning control. */
export interface OpenRouterReasoning {
  enabled?: boolean;
  effort?: string;
  max_tokens?: number;
  exclude?: boolean;
}

export interface OpenAIChatRequest {
  model: string;
  messages: OpenAIChatMessage[];
  stream: boolean;
  stream_options?: { include_usage: boolean };
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string[];
  presence_penalty?: number;
  frequency_penalty?: number;
  n?: number;
  tools?: OpenAIFunctionTool[];
  tool_choice?: OpenAIToolChoice;
  parallel_tool_calls?: boolean;
  response_format?: OpenAIResponseFormat;
  reasoning_effort?: string;
  /** OpenRouter. */
  reasoning?: OpenRouterReasoning;
  logprobs?: boolean;
  top_logprobs?: number;
  /** vLLM extended sampling. */
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
  [extra: string]: unknown;
}

export interface OpenAIUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number | null } | null;
  completion_tokens_details?: { reasoning_tokens?: number | null } | null;
}

export interface OpenAIToolCallDelta {
  /** Absent on a few upstreams (Gemini's compatibility layer): the position in the array is used. */
  index?: number;
  id?: string | null;
  type?: 'function';
  function?: { name?: string | null; arguments?: string | Record<string, unknown> | null } | null;
}

export interface OpenAIDelta {
  role?: string | null;
  content?: string | null;
  /** Refusal text of structured-output calls; surfaced as text so it is never dropped. */
  refusal?: string | null;
  /** DeepSeek, vLLM, llama.cpp. */
  reasoning_content?: string | null;
  /** OpenRouter, Ollama. */
  reasoning?: string | null;
  tool_calls?: OpenAIToolCallDelta[] | null;
}

export interface OpenAITokenLogprob {
  token: string;
  logprob: number;
  bytes?: number[] | null;
  top_logprobs?: Array<{ token: string; logprob: number; bytes?: number[] | null }> | null;
}

export interface OpenAILogprobs {
  content?: OpenAITokenLogprob[] | null;
  refusal?: OpenAITokenLogprob[] | null;
}

export interface OpenAIChunkChoice {
  index?: number;
  delta?: OpenAIDelta | null;
  logprobs?: OpenAILogprobs | null;
  finish_reason?: string | null;
}

export interface OpenAIErrorObject {
  message?: string;
  type?: string | null;
  param?: string | null;
  /** A string on OpenAI; a number (HTTP status) on OpenRouter and vLLM. */
  code?: string | number | null;
  metadata?: unknown;
}

export interface OpenAIChatChunk {
  id?: string;
  object?: string;
  created?: number;
  model?: string;
  choices?: OpenAIChunkChoice[];
  usage?: OpenAIUsage | null;
  /** Groq reports usage here. */
  x_groq?: { usage?: OpenAIUsage | null } | null;
  /** An error reported inside a 200 stream (OpenRouter, vLLM, Azure). */
  error?: OpenAIErrorObject | string;
}

/** A buffered `chat.completion`, for upstreams that ignore `stream: true`. */
export interface OpenAIChatCompletion {
  id?: string;
  model?: string;
  choices?: Array<{
    index?: number;
    message?: OpenAIDelta | null;
    logprobs?: OpenAILogprobs | null;
    finish_reason?: string | null;
  }>;
  usage?: OpenAIUsage | null;
  error?: OpenAIErrorObject | string;
}
