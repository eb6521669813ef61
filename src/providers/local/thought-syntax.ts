// How the model marks its reasoning (`<think>` … `</think>` for Qwen3 and DeepSeek-R1), from the
// chat wrapper's thought segment, and whether the model's own template knows about thinking.

import { LlamaText } from 'node-llama-cpp';
import type { LoadedModel } from './runtime.js';

export interface ThoughtSyntax {
  prefix: LlamaText;
  suffix: LlamaText;
  open: string;
  close: string;
  /** The format opens a thought at the start of every response (the model expects it). */
  openOnResponseStart: boolean;
  /** The model's chat template mentions the thought tag: a reasoning model. */
  modelThinks: boolean;
}

const cache = new WeakMap<LoadedModel, ThoughtSyntax>();

export function thoughtSyntax(loaded: LoadedModel): ThoughtSyntax {
  let syntax = cache.get(loaded);
  if (syntax) return syntax;
  const segment = loaded.chatWrapper.settings.segments?.thought;
  const prefix = typeof segment?.prefix === 'string' || segment?.prefix instanceof LlamaText ? LlamaText(segment.prefix) : LlamaText('<think>\n');
  const suffix = segment?.suffix !== undefined ? LlamaText(segment.suffix) : LlamaText('\n</think>');
  const open = prefix.toString().trim() || '<think>';
  const close = suffix.toString().trim() || '</think>';
  const template = loaded.model.fileInfo.metadata?.tokenizer?.chat_template;
  syntax = {
    prefix,
    suffix,
    open,
    close,
    openOnResponseStart: segment?.openOnResponseStart === true,
    modelThinks: typeof template === 'string' && template.includes(open),
  };
  cache.set(loaded, syntax);
  return syntax;
}
