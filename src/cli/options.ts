import { Option, type Command } from 'commander';

/** Options every command that reads the config shares. */
export function configOptions(command: Command): Command {
  return command
    .addOption(new Option('-c, --config <file>', 'YAML config file (default: $SWITCHBOARD_CONFIG or ./switchboard.yaml if present)'))
    .addOption(new Option('--data-dir <dir>', 'where the SQLite store and artifacts live (default ./data)'))
    .addOption(new Option('-m, --model <model>', 'default local model: a GGUF path, an http(s) URL, hf:owner/repo/file.gguf or hf:owner/repo:QUANT'));
}
