// The request's sampling fields in node-llama-cpp's terms.

import { randomInt } from 'node:crypto';
import { TokenBias, type LlamaContextSequenceRepeatPenalty, type LlamaModel, type Token } from 'node-llama-cpp';
import { badRequest } from '../../core/errors.js';
import { vocabularySize } from './vocabulary.js';
import type { ChatRequest } from '../../core/types.js';

export interface SamplingOptions {
  temperature: number;
  topK?: number;
  topP?: number;
  minP?: number;
  seed?: number;
}

/** The OpenAI default temperature is 1; node-llama-cpp's own default (0, greedy) would surprise clients. */
const DEFAULT_TEMPERATURE = 1;
/** How many recent generated tokens the penalties look at (llama.cpp's penalty_last_n is 64). */
const PENALTY_WINDOW = 256;

export function samplingOptions(request: ChatRequest): SamplingOptions {
  const options: SamplingOptions = { temperature: request.temperature ?? DEFAULT_TEMPERATURE };
  if (request.topK !== undefined) options.topK = request.topK;
  if (request.topP !== undefined) options.topP = request.topP;
  if (request.minP !== undefined) options.minP = request.minP;
  // Without a seed node-llama-cpp seeds from time(NULL), in whole seconds: requests in the same
  // second (and n's choices, which start together) sampled the same answer. A random seed per
  // response makes every call differ, as clients expect.
  options.seed = request.seed ?? randomInt(2 ** 32);
  return options;
}

/**
 * Presence, frequency and repetition penalties over the tokens generated so far (OpenAI's
 * "the text so far" of the completion), or undefined when none is asked for.
 */
export function repeatPenalty(request: ChatRequest, generated: () => Token[]): LlamaContextSequenceRepeatPenalty | undefined {
  const presence = request.presencePenalty ?? 0;
  const frequency = request.frequencyPenalty ?? 0;
  const repetition = request.repetitionPenalty ?? 1;
  if (presence === 0 && frequency === 0 && repetition === 1) return undefined;
  return {
    punishTokens: () => generated().slice(-PENALTY_WINDOW),
    maxPunishTokens: PENALTY_WINDOW,
    penalty: repetition,
    presencePenalty: presence,
    frequencyPenalty: frequency,
  };
}

/**
 * OpenAI-style `logit_bias` ({token id: -100..100}), from the request's `logitBias` (OpenAI's
 * field) or `providerOptions.local.logitBias`: added to the token's logit; -100 bans the token.
 */
export function tokenBias(request: ChatRequest, model: LlamaModel): TokenBias | undefined {
  const bias = request.logitBias ?? request.providerOptions?.local?.logitBias;
  if (!bias || typeof bias !== 'object') return undefined;
  const result = new TokenBias(model.tokenizer);
  for (const [token, value] of Object.entries(bias as Record<string, unknown>)) {
    const id = Number(token);
    if (!Number.isInteger(id) || id < 0 || typeof value !== 'number' || !Number.isFinite(value)) {
      throw badRequest(`logitBias needs integer token ids mapped to numbers; got ${JSON.stringify(token)}: ${JSON.stringify(value)}`, 'logit_bias');
    }
    // node-llama-cpp passes ids as 32-bit integers: past the vocabulary one was ignored, and 2^32 biased token 0.
    if (id >= vocabularySize(model)) {
      throw badRequest(`logit_bias names token ${token}, which is not in the model's vocabulary (token ids 0 to ${vocabularySize(model) - 1})`, 'logit_bias', 'invalid_token_id');
    }
    // node-llama-cpp's TokenBias skips end-of-generation tokens: say so rather than ignore the bias.
    if (model.isEogToken(id as Token)) {
      throw badRequest(`logit_bias cannot change token ${id}: it ends the turn, and the local runtime does not bias end-of-turn tokens (use max_tokens or stop instead)`, 'logit_bias', 'unsupported_parameter');
    }
    result.set(id as Token, value <= -100 ? 'never' : { logit: value });
  }
  return result;
}
