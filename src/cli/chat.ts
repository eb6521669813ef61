// Interactive terminal chat against a running server; tokens are printed as they stream.

import readline from 'node:readline/promises';
import { createParser } from 'eventsource-parser';
import type { Command } from 'commander';

interface ChatFlags {
  url: string;
  model: string;
  key?: string;
  system?: string;
  maxTokens?: string;
}

async function streamReply(flags: ChatFlags, messages: Array<{ role: string; content: string }>, out: NodeJS.WritableStream): Promise<string> {
  const response = await fetch(`${flags.url.replace(/\/$/, '')}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(flags.key ? { authorization: `Bearer ${flags.key}` } : {}) },
    body: JSON.stringify({ model: flags.model, messages, stream: true, ...(flags.maxTokens ? { max_tokens: Number(flags.maxTokens) } : {}) }),
  });
  if (!response.ok || !response.body) {
    const text = await response.text();
    throw new Error(`HTTP ${response.status}: ${text}`);
  }
  let answer = '';
  let error: string | undefined;
  const parser = createParser({
    onEvent(event) {
      if (event.data === '[DONE]') return;
      const chunk = JSON.parse(event.data) as { choices?: Array<{ delta?: { content?: string } }>; error?: { message: string } };
      if (chunk.error) error = chunk.error.message;
      const delta = chunk.choices?.[0]?.delta?.content;
      if (delta) {
        answer += delta;
        out.write(delta);
      }
    },
  });
  const decoder = new TextDecoder();
  for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(bytes, { stream: true }));
  out.write('\n');
  if (error) throw new Error(error);
  return answer;
}

export function registerChatCommand(program: Command): void {
  program
    .command('chat')
    .description('Chat with a model of a running server in the terminal (streams tokens as they come). Type /exit to leave.')
    .option('--url <url>', 'server URL', process.env.SWITCHBOARD_URL ?? 'http://127.0.0.1:8080')
    .option('-m, --model <model>', 'model id or alias', 'default')
    .option('-k, --key <key>', 'API key (env SWITCHBOARD_API_KEY)', process.env.SWITCHBOARD_API_KEY)
    .option('-s, --system <prompt>', 'system prompt')
    .option('--max-tokens <n>', 'max tokens per answer')
    .action(async (flags: ChatFlags) => {
      const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
      const messages: Array<{ role: string; content: string }> = flags.system ? [{ role: 'system', content: flags.system }] : [];
      process.stdout.write(`Chatting with ${flags.model} at ${flags.url}. /exit to leave.\n`);
      for (;;) {
        let line: string;
        try {
          line = await rl.question('> ');
        } catch {
          break; // stdin closed
        }
        const text = line.trim();
        if (text === '/exit' || text === '/quit') break;
        if (!text) continue;
        messages.push({ role: 'user', content: text });
        try {
          const answer = await streamReply(flags, messages, process.stdout);
          messages.push({ role: 'assistant', content: answer });
        } catch (err) {
          messages.pop();
          process.stderr.write(`error: ${(err as Error).message}\n`);
        }
      }
      rl.close();
    });
}
