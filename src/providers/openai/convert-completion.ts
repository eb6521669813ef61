// A buffered `chat.completion` (from an upstream that ignores `stream: true`) → the chunks it
// would have streamed, so one converter handles both shapes.

import type { StreamPart } from '../../core/types.js';
import type { OpenAIChatChunk, OpenAIChatCompletion } from './api.js';
import { errorFromStreamEvent, invalidUpstream } from './errors.js';
import type { ChunkConverter } from './stream.js';

export function completionToChunks(completion: OpenAIChatCompletion): OpenAIChatChunk[] {
  const head = { ...(completion.id ? { id: completion.id } : {}), ...(completion.model ? { model: completion.model } : {}) };
  const content: OpenAIChatChunk = {
    ...head,
    choices: (completion.choices ?? []).map((choice, position) => ({
      index: choice.index ?? position,
      delta: {
        ...choice.message,
        tool_calls: choice.message?.tool_calls?.map((call, index) => ({ ...call, index })),
      },
      logprobs: choice.logprobs,
      // A missing finish_reason still ends the choice: the response is complete by definition.
      finish_reason: choice.finish_reason ?? 'stop',
    })),
  };
  return completion.usage ? [content, { ...head, choices: [], usage: completion.usage }] : [content];
}

/** Parts of a buffered JSON body; a body that is not a completion is 'upstream_invalid'. */
export function partsFromCompletionBody(text: string, converter: ChunkConverter): StreamPart[] {
  let completion: OpenAIChatCompletion;
  try {
    completion = JSON.parse(text) as OpenAIChatCompletion;
  } catch (err) {
    throw invalidUpstream(`The upstream sent a body that is not JSON: ${text.slice(0, 200)}`, err);
  }
  if (!completion || typeof completion !== 'object') throw invalidUpstream('The upstream sent a JSON body that is not an object');
  if (completion.error !== undefined) throw errorFromStreamEvent(completion.error);
  const out: StreamPart[] = [];
  for (const chunk of completionToChunks(completion)) converter.push(chunk, out);
  converter.end(true, out);
  return out;
}
