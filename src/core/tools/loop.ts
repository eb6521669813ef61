// The auto-execute loop any dialect can use: call the model, run the tool calls it makes (via
// the executor, which refuses what is not allowed), feed the results back, and call it again
// until it answers in text — yielding canonical parts as it goes, with usage summed over rounds.
// Async tools end the loop at once: their parts carry an executionId to poll.

import { GatewayError } from '../errors.js';
import { withRequestId, type ChatResult, type Gateway, type RequestContext } from '../gateway.js';
import type { ChatRequest, ContentPart, FinishReason, Message, StreamPart, ToolDefinition, Usage } from '../types.js';
import { addUsage, emptyUsage } from '../types.js';
import type { ToolCallOutcome, ToolCallRequest, ToolExecutor } from './executor.js';

export interface ToolLoopOptions {
  gateway: Gateway;
  request: ChatRequest;
  context: RequestContext;
  executor: ToolExecutor;
  /** Model calls at most (tool rounds + the final answer). */
  maxRounds: number;
  /**
   * The client's own tools (Messages `tools` beside `mcp_servers`): a call to one is left to the
   * client as an ordinary tool call, and the loop ends after the round. Any other call the
   * executor does not handle is refused, fed back to the model as a tool error (seed 001).
   */
  clientTools?: readonly string[];
  /** The first model call, once it has started: the response's served-by and rate-limit headers are its. */
  onFirstCall?: (result: ChatResult) => void;
}

/** Request tools plus the executor's server tools, the request's own definition winning a name clash. */
export function mergeTools(requestTools: ToolDefinition[] | undefined, offered: ToolDefinition[]): ToolDefinition[] {
  const names = new Set((requestTools ?? []).map((t) => t.name));
  return [...(requestTools ?? []), ...offered.filter((t) => !names.has(t.name))];
}

/** The `tool-result` part for an executed call; `extra` carries status, executionId, images, s3Urls. */
export function toolResultPart(call: ToolCallRequest, outcome: ToolCallOutcome): StreamPart {
  if (outcome.status === 'pending') {
    return { type: 'tool-result', toolCallId: call.id, toolName: call.name, result: undefined, extra: { status: 'pending', executionId: outcome.executionId } };
  }
  const extra: Record<string, unknown> = { status: outcome.status };
  if (outcome.view.images) extra.images = outcome.view.images;
  if (outcome.view.s3Urls) extra.s3Urls = outcome.view.s3Urls;
  return { type: 'tool-result', toolCallId: call.id, toolName: call.name, result: outcome.view.result, isError: outcome.isError, extra };
}

function roundContext(context: RequestContext, round: number): RequestContext {
  // Each model call is logged as its own request; later rounds get a derived id.
  // Not a new request for rpm: a key's rate limit must not stop a loop after its tools have run.
  return round === 1 ? context : { ...withRequestId(context, `${context.requestId}-r${round}`), continuation: true };
}

export async function* runToolLoop(options: ToolLoopOptions): AsyncGenerator<StreamPart> {
  const { gateway, context, executor, maxRounds } = options;
  const tools = mergeTools(options.request.tools, executor.offered);
  const messages: Message[] = [...options.request.messages];
  let usage: Usage = emptyUsage();
  const clientTools = new Set(options.clientTools);
  for (let round = 1; round <= maxRounds; round++) {
    const lastRound = round === maxRounds;
    const request: ChatRequest = { ...options.request, messages, tools: tools.length ? tools : undefined };
    // A forced tool choice applies to the first call only, or the model could never answer;
    // the last call must answer in text.
    if (round > 1 && (request.toolChoice?.type === 'required' || request.toolChoice?.type === 'tool')) request.toolChoice = { type: 'auto' };
    if (lastRound && tools.length) request.toolChoice = { type: 'none' };
    const result = await gateway.chat(request, roundContext(context, round));
    if (round === 1) options.onFirstCall?.(result);
    const calls = new Map<string, ToolCallRequest>();
    let clientCalls = 0;
    let text = '';
    const providerBlocks: ContentPart[] = [];
    let finishReason: FinishReason = 'stop';
    for await (const part of result.stream) {
      switch (part.type) {
        case 'start':
          if (round === 1) yield part;
          break;
        case 'text-start':
        case 'text-end':
        case 'reasoning-start':
        case 'reasoning-end':
          yield { ...part, id: `${round}:${part.id}` };
          break;
        case 'text-delta':
          text += part.delta;
          yield { ...part, id: `${round}:${part.id}` };
          break;
        case 'reasoning-delta':
        case 'text-citation':
          yield { ...part, id: `${round}:${part.id}` };
          break;
        case 'provider-block':
          // A provider's own tool call or result: part of the turn the next round sends back.
          providerBlocks.push({ type: 'provider-block', provider: part.provider, block: part.block });
          yield part;
          break;
        case 'tool-input-start':
          if (clientTools.has(part.toolName)) {
            clientCalls++;
            yield part;
            break;
          }
          calls.set(part.id, { id: part.id, name: part.toolName, arguments: '' });
          yield { ...part, serverExecuted: { serverName: executor.serverNameOf(part.toolName) } };
          break;
        case 'tool-input-delta': {
          const call = calls.get(part.id);
          if (call) call.arguments += part.delta;
          yield part;
          break;
        }
        case 'tool-input-end':
          yield part;
          break;
        case 'tool-result':
          yield part;
          break;
        case 'finish':
          usage = addUsage(usage, part.usage);
          finishReason = part.finishReason;
          break;
        case 'error':
          yield part;
          return;
      }
    }
    // A round the token limit ended may have cut its last call short: none of it runs.
    if (calls.size === 0 || finishReason === 'length') {
      yield { type: 'finish', finishReason, usage };
      return;
    }
    // On the last round the gateway's calls can run only when the client's own calls end the
    // turn anyway: no further model call is needed for them.
    if (lastRound && clientCalls === 0) {
      yield { type: 'error', error: new GatewayError('upstream_invalid', `The model was still calling tools after ${maxRounds} rounds`, { code: 'tool_rounds_exceeded', retryable: false }) };
      return;
    }
    const list = [...calls.values()];
    const outcomes = await Promise.all(list.map((call) => executor.execute(call, context)));
    const assistant: ContentPart[] = [...providerBlocks, ...(text ? [{ type: 'text' as const, text }] : [])];
    const results: ContentPart[] = [];
    for (const [i, call] of list.entries()) {
      const outcome = outcomes[i]!;
      yield toolResultPart(call, outcome);
      assistant.push({ type: 'tool-call', id: call.id, name: call.name, arguments: call.arguments || '{}' });
      results.push({ type: 'tool-result', toolCallId: call.id, name: call.name, content: [{ type: 'text', text: outcome.modelText }], isError: outcome.isError });
    }
    if (clientCalls > 0 || outcomes.some((o) => o.status === 'pending')) {
      // The client has calls to run, or an async tool's result is not there yet: answer now.
      yield { type: 'finish', finishReason: 'tool-calls', usage };
      return;
    }
    if (context.signal.aborted) {
      // The client left while the tools ran: another model call would be spent for no one.
      yield { type: 'error', error: new GatewayError('cancelled', 'The request was cancelled') };
      return;
    }
    messages.push({ role: 'assistant', content: assistant }, { role: 'tool', content: results });
  }
}
