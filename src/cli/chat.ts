// Interactive terminal chat against a running server; tokens are printed as they stream.
// Ctrl-C stops the answer being written (the conversation goes on); at the prompt it leaves.

import readline from 'node:readline';
import { createParser } from 'eventsource-parser';
import { InvalidArgumentError, type Command } from 'commander';
import { describeNetworkError } from '../core/errors.js';

interface ChatFlags {
  url: string;
  model: string;
  key?: string;
  system?: string;
  maxTokens?: number;
  session?: string;
}

type Turn = { role: string; content: string };

interface Reply {
  text: string;
  /** The user pressed Ctrl-C before the answer ended. */
  stopped: boolean;
  finishReason?: string;
}

interface Terminal {
  out: NodeJS.WriteStream;
  err: NodeJS.WritableStream;
}

const DIM = '\x1b[2m';
const UNDIM = '\x1b[22m';

/** One streamed answer; resolves with what was written, also when Ctrl-C cut it short. */
async function streamReply(flags: ChatFlags, messages: Turn[], signal: AbortSignal, terminal: Terminal): Promise<Reply> {
  const url = `${flags.url.replace(/\/$/, '')}/v1/chat/completions`;
  const reply: Reply = { text: '', stopped: false };
  let error: string | undefined;
  let reasoning = false;
  const setReasoning = (on: boolean) => {
    if (on !== reasoning && terminal.out.isTTY) terminal.out.write(on ? DIM : `${UNDIM}\n`);
    reasoning = on;
  };
  const parser = createParser({
    onEvent(event) {
      if (event.data === '[DONE]') return;
      const chunk = JSON.parse(event.data) as {
        choices?: Array<{ delta?: { content?: string | null; reasoning?: string }; finish_reason?: string | null }>;
        error?: { message: string };
      };
      if (chunk.error) error = chunk.error.message;
      const choice = chunk.choices?.[0];
      // Reasoning is shown dimmed on a terminal and left out of piped output and of the history.
      if (choice?.delta?.reasoning && terminal.out.isTTY) {
        setReasoning(true);
        terminal.out.write(choice.delta.reasoning);
      }
      if (choice?.delta?.content) {
        setReasoning(false);
        reply.text += choice.delta.content;
        terminal.out.write(choice.delta.content);
      }
      if (choice?.finish_reason) reply.finishReason = choice.finish_reason;
    },
  });
  try {
    const response = await fetch(url, {
      method: 'POST',
      signal,
      headers: { 'content-type': 'application/json', ...authorization(flags), ...(flags.session ? { 'x-session-id': flags.session } : {}) },
      body: JSON.stringify({ model: flags.model, messages, stream: true, ...(flags.maxTokens ? { max_tokens: flags.maxTokens } : {}) }),
    });
    if (!response.ok || !response.body) throw new Error(await describeRefusal(response));
    const decoder = new TextDecoder();
    for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(bytes, { stream: true }));
  } catch (err) {
    if (!signal.aborted) throw err instanceof TypeError ? new Error(describeUnreachable(flags.url, err)) : err;
    reply.stopped = true;
  } finally {
    setReasoning(false);
  }
  if (error) throw new Error(error);
  return reply;
}

// The variable is read here, not as the option's default, which --help (and every usage error) prints.
const apiKey = (flags: ChatFlags): string | undefined => flags.key || process.env.SWITCHBOARD_API_KEY || undefined;
const authorization = (flags: ChatFlags): Record<string, string> => {
  const key = apiKey(flags);
  return key ? { authorization: `Bearer ${key}` } : {};
};

/** With --session: says whether the server already holds turns of it (GET /v1/sessions/{id}). */
async function announceSession(flags: ChatFlags, session: string, terminal: Terminal): Promise<void> {
  const url = `${flags.url.replace(/\/$/, '')}/v1/sessions/${encodeURIComponent(session)}`;
  try {
    const response = await fetch(url, { headers: authorization(flags) });
    if (response.status === 404) return void terminal.out.write(`New session ${session}: the server keeps its turns.\n`);
    if (!response.ok) return void terminal.err.write(`error: ${await describeRefusal(response)}\n`);
    const { messages } = (await response.json()) as { messages: unknown[] };
    terminal.out.write(`Resuming session ${session}: ${messages.length} earlier messages.\n`);
  } catch (err) {
    terminal.err.write(`error: ${err instanceof TypeError ? describeUnreachable(flags.url, err) : (err as Error).message}\n`);
  }
}

/** `404 model_not_found: The model 'x' does not exist` rather than the raw JSON body. */
async function describeRefusal(response: Response): Promise<string> {
  const body = await response.text();
  try {
    const { error } = JSON.parse(body) as { error?: { message?: string; code?: string | null; type?: string } };
    if (error?.message) return `${response.status} ${error.code ?? error.type ?? ''}: ${error.message}`.replace(' :', ':');
  } catch {
    // not JSON: show it as it came
  }
  return `${response.status}: ${body.slice(0, 500)}`;
}

function describeUnreachable(url: string, err: TypeError): string {
  return `cannot reach ${url} (${describeNetworkError(err)}); is \`switchboard serve\` running there?`;
}

async function chat(flags: ChatFlags, terminal: Terminal): Promise<void> {
  // SWITCHBOARD_URL is not seen by the option's parser.
  if (!isHttpUrl(flags.url)) throw new Error(`Invalid server URL '${flags.url}': use an http(s) URL, like http://127.0.0.1:8080`);
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY, prompt: '> ' });
  let answering: AbortController | undefined;
  const interrupt = () => (answering ? answering.abort() : rl.close());
  rl.on('SIGINT', interrupt); // Ctrl-C on a terminal: readline's raw mode turns it into this event
  process.on('SIGINT', interrupt); // SIGINT sent to the process, as when input is piped
  const system: Turn[] = flags.system ? [{ role: 'system', content: flags.system }] : [];
  // The conversation so far, kept here; with --session the server keeps it instead (X-Session-ID).
  const history: Turn[] = [];
  // Piped input: stdout is the answers alone (a script captures them); no banner, no prompts there.
  const interactive = process.stdin.isTTY === true;
  (interactive ? terminal.out : terminal.err).write(`Chatting with ${flags.model} at ${flags.url}. Ctrl-C stops an answer; /exit or Ctrl-D leaves.\n`);
  // Lines are read through the iterator, which queues them: piped lines that arrive while an
  // answer streams, or while the session is looked up, wait their turn instead of being dropped.
  const lines = rl[Symbol.asyncIterator]();
  if (flags.session) await announceSession(flags, flags.session, terminal);
  // A script piping its questions learns from the exit status that one was not answered.
  let failed = false;
  try {
    for (;;) {
      if (interactive) rl.prompt();
      const next = await lines.next();
      if (next.done) break;
      const text = (next.value as string).trim();
      if (text === '/exit' || text === '/quit') break;
      if (!text) continue;
      const turn: Turn = { role: 'user', content: text };
      answering = new AbortController();
      try {
        const reply = await streamReply(flags, [...system, ...history, turn], answering.signal, terminal);
        terminal.out.write('\n');
        if (reply.stopped) terminal.err.write('[stopped]\n');
        else if (reply.finishReason === 'length') terminal.err.write('[cut short at the token limit]\n');
        // A stopped answer stays in the history as far as it got, as in the chat apps; one
        // stopped before its first word takes its question with it. (A server-side session keeps
        // only answers that ended.)
        if (!flags.session && !(reply.stopped && !reply.text)) history.push(turn, { role: 'assistant', content: reply.text });
      } catch (err) {
        failed = true;
        terminal.err.write(`\nerror: ${(err as Error).message}\n`);
      } finally {
        answering = undefined;
      }
    }
  } finally {
    process.off('SIGINT', interrupt);
    rl.close();
  }
  if (failed) process.exitCode = 1;
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of at least 1.');
  return n;
}

const isHttpUrl = (value: string): boolean => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol);

function httpUrl(value: string): string {
  if (!isHttpUrl(value)) throw new InvalidArgumentError('must be an http(s) URL, like http://127.0.0.1:8080.');
  return value;
}

export function registerChatCommand(program: Command): void {
  program
    .command('chat')
    .description(
      'Chat with a model of a running server in the terminal: tokens are printed as they stream, reasoning dimmed. ' +
        'Ctrl-C stops an answer and keeps what was written; /exit, Ctrl-D or Ctrl-C at the prompt leaves.',
    )
    .option('--url <url>', 'server URL (env SWITCHBOARD_URL)', httpUrl, process.env.SWITCHBOARD_URL ?? 'http://127.0.0.1:8080')
    .option('-m, --model <model>', 'model id or alias', 'default')
    .option('-k, --key <key>', 'API key (env SWITCHBOARD_API_KEY)')
    .option('-s, --system <prompt>', 'system prompt')
    .option('--max-tokens <n>', 'max tokens per answer', positiveInteger)
    .option('--session <id>', 'keep the conversation on the server (X-Session-ID): the same id later resumes it')
    .action((flags: ChatFlags) => chat(flags, { out: process.stdout, err: process.stderr }));
}
