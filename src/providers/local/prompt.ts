// Renders a canonical request into the model's own chat format with node-llama-cpp's chat
// wrapper (chosen from the GGUF's template), tools and tool results included, and tokenizes it.
// The token count of this rendering is the request's exact input usage.

import { LlamaText, SpecialToken, type ChatHistoryItem, type ChatModelFunctionCall, type ChatModelFunctions, type ChatModelResponse, type GbnfJsonSchema, type Token } from 'node-llama-cpp';
import type { ChatRequest, ContentPart, Message, ToolResultPart } from '../../core/types.js';
import { yieldToIo } from '../../core/event-loop.js';
import type { LoadedModel } from './runtime.js';
import { thoughtSyntax } from './thought-syntax.js';

export interface RenderedPrompt {
  tokens: Token[];
  /** The text the tokens were made from (logs and tests). */
  text: string;
  /** Generation starts inside a thought (an opened `<think>`). */
  startsInThought: boolean;
  /** Texts that end the model's turn in this chat format, besides end-of-generation tokens. */
  stopTriggers: string[];
  /** Tools are shown to the model (tool choice is not `none`). */
  toolsOffered: boolean;
}

/**
 * Tokens the prompt has at the least, without tokenizing it: chat templates write the messages'
 * text and tool results as given (at most trimming whitespace, which is not counted), and no token
 * stands for more than `longestTokenChars` characters. Tokenizing runs on the event loop (~4 MB/s
 * here): a 17 MB prompt held every other request for 5 s only to be refused as too long.
 */
export function promptTokensAtLeast(loaded: Pick<LoadedModel, 'longestTokenChars'>, request: ChatRequest): number {
  let chars = 0;
  for (const message of request.messages) {
    for (const part of message.content) {
      if (part.type === 'text') chars += visibleChars(part.text);
      else if (part.type === 'tool-result') for (const c of part.content) if (c.type === 'text') chars += visibleChars(c.text);
    }
  }
  return Math.ceil(chars / loaded.longestTokenChars);
}

/** Characters other than whitespace (what String.prototype.trim removes; control characters too, which only lowers the bound). */
function visibleChars(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code <= 32 || code === 0xa0 || code === 0xfeff) continue;
    if (code >= 0x1680 && (code === 0x1680 || (code >= 0x2000 && code <= 0x200a) || code === 0x2028 || code === 0x2029 || code === 0x202f || code === 0x205f || code === 0x3000)) continue;
    count++;
  }
  return count;
}

export async function renderPrompt(loaded: LoadedModel, request: ChatRequest): Promise<RenderedPrompt> {
  const toolsOffered = Boolean(request.tools?.length) && request.toolChoice?.type !== 'none';
  const functions: ChatModelFunctions | undefined = toolsOffered
    ? Object.fromEntries(request.tools!.map((t) => [t.name, { description: t.description, params: t.parameters as unknown as GbnfJsonSchema }]))
    : undefined;
  const { history, continuing } = toChatHistory(request.messages);
  // The chat wrapper renders synchronously (tool schemas through JSON dumps: 22 MB of them took
  // 0.43 s): a turn for other requests first, so it does not add to the parsing of the same body.
  await yieldToIo();
  const state = loaded.chatWrapper.generateContextState({ chatHistory: history, availableFunctions: functions });

  const thought = thoughtSyntax(loaded);
  const last = history.at(-1) as ChatModelResponse;
  const lastItem = last.response.at(-1);
  let startsInThought = continuing && typeof lastItem === 'object' && lastItem.type === 'segment' && lastItem.segmentType === 'thought' && !lastItem.ended;
  let text = state.contextText;
  const reasoningOff = request.reasoning?.enabled === false || request.reasoning?.effort === 'none';
  if (!continuing && thought.modelThinks) {
    if (reasoningOff) {
      // Qwen3's own switch for "answer without thinking": an empty thought.
      text = LlamaText([text, thought.prefix, thought.suffix, '\n\n']);
    } else if (thought.openOnResponseStart) {
      text = LlamaText([text, thought.prefix]);
      startsInThought = true;
    }
  }
  return {
    tokens: await loaded.tokenizer.tokenize(text),
    text: text.toString(),
    startsInThought,
    stopTriggers: state.stopGenerationTriggers.map(triggerText).filter((t): t is string => Boolean(t)),
    toolsOffered,
  };
}

/**
 * Canonical messages → node-llama-cpp chat history. An assistant turn, the tool results that
 * answer its calls and the assistant text after them form one model response, as the chat
 * templates render them. A conversation ending in an assistant message or in tool results is
 * continued (prefill); otherwise a new, empty model response is opened.
 */
export function toChatHistory(messages: readonly Message[]): { history: ChatHistoryItem[]; continuing: boolean } {
  const history: ChatHistoryItem[] = [];
  const callsById = new Map<string, ChatModelFunctionCall>();
  let current: ChatModelResponse | undefined;

  const modelItem = (): ChatModelResponse => {
    if (!current) {
      current = { type: 'model', response: [] };
      history.push(current);
    }
    return current;
  };

  for (const message of messages) {
    const results = message.content.filter((p): p is ToolResultPart => p.type === 'tool-result');
    const orphans: string[] = [];
    for (const result of results) {
      const call = callsById.get(result.toolCallId);
      if (call) call.result = toolResultValue(result);
      else orphans.push(`Tool result${result.name ? ` (${result.name})` : ''}: ${toolResultText(result)}`);
    }
    const text = [...orphans, ...textOf(message.content)].join('\n');

    if (message.role === 'system') {
      if (text) history.push({ type: 'system', text });
      current = undefined;
    } else if (message.role === 'assistant') {
      const item = modelItem();
      for (const part of message.content) {
        if (part.type === 'text' && part.text) item.response.push(part.text);
        else if (part.type === 'reasoning' && part.text) item.response.push({ type: 'segment', segmentType: 'thought', text: part.text, ended: true });
        else if (part.type === 'tool-call') {
          const call: ChatModelFunctionCall = { type: 'functionCall', name: part.name, params: parseArguments(part.arguments), result: undefined };
          callsById.set(part.id, call);
          item.response.push(call);
        }
      }
    } else if (text || results.length === 0) {
      // A user message, or a tool message whose results had no call to attach to.
      history.push({ type: 'user', text });
      current = undefined;
    }
  }

  const last = history.at(-1);
  const continuing = last?.type === 'model';
  if (continuing) {
    // A prefilled thought that was not closed is continued inside the thought.
    const lastMessage = messages.at(-1);
    const lastPart = lastMessage?.role === 'assistant' ? lastMessage.content.at(-1) : undefined;
    const item = last.response.at(-1);
    if (lastPart?.type === 'reasoning' && typeof item === 'object' && item.type === 'segment') item.ended = false;
  } else {
    history.push({ type: 'model', response: [] });
  }
  return { history, continuing };
}

function textOf(content: readonly ContentPart[]): string[] {
  // Media parts cannot reach a text-only model (the core refuses them); ignore them defensively.
  return content.filter((p) => p.type === 'text').map((p) => (p as { text: string }).text);
}

function toolResultText(result: ToolResultPart): string {
  const text = result.content.map((c) => (c.type === 'text' ? c.text : `[${c.type}]`)).join('\n');
  return result.isError ? `Error: ${text}` : text;
}

/** A JSON result is shown as JSON; anything else as a string. */
function toolResultValue(result: ToolResultPart): unknown {
  const text = toolResultText(result);
  if (result.isError) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function parseArguments(args: string): unknown {
  try {
    return JSON.parse(args || '{}');
  } catch {
    return args;
  }
}

/** A stop trigger as plain text, when it is text at all (end-of-sequence tokens are handled as tokens). */
function triggerText(trigger: LlamaText): string | undefined {
  if (trigger.values.some((v) => v instanceof SpecialToken)) return undefined;
  return trigger.toString() || undefined;
}
