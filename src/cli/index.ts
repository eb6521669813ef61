// The `switchboard` command line: serve, chat, models, keys, usage.

import { Command } from 'commander';
import { registerChatCommand } from './chat.js';
import { registerKeysCommand } from './keys.js';
import { registerModelsCommand } from './models.js';
import { registerServeCommand } from './serve.js';
import { registerUsageCommand } from './usage.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('switchboard')
    .description('Self-hosted LLM chat gateway: OpenAI, Anthropic Messages, organisation chat and multi-provider APIs over local and remote models.')
    .version('0.1.0')
    .showHelpAfterError();
  registerServeCommand(program);
  registerChatCommand(program);
  registerModelsCommand(program);
  registerKeysCommand(program);
  registerUsageCommand(program);
  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.stderr.write(`switchboard: ${(err as Error).message}\n`);
    process.exit(1);
  });
