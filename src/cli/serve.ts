import { Option, type Command } from 'commander';
import { loadConfig } from '../core/config.js';
import { createServer } from '../server/app.js';
import { configOptions } from './options.js';

export interface ConfigFlags {
  config?: string;
  dataDir?: string;
  model?: string;
  host?: string;
  port?: string;
  threads?: string;
  gpu?: string;
  logLevel?: string;
}

export function configFromFlags(flags: ConfigFlags) {
  return loadConfig({
    configFile: flags.config,
    dataDir: flags.dataDir,
    model: flags.model,
    host: flags.host,
    port: flags.port,
    threads: flags.threads,
    gpu: flags.gpu,
    logLevel: flags.logLevel,
  });
}

export function registerServeCommand(program: Command): void {
  configOptions(program.command('serve'))
    .description('Start the gateway. With no config it serves the default local model on 127.0.0.1:8080.')
    .addOption(new Option('--host <host>', 'listen address (env SWITCHBOARD_HOST; default 127.0.0.1)'))
    .addOption(new Option('-p, --port <port>', 'listen port (env SWITCHBOARD_PORT; default 8080; 0 = any free port)'))
    .addOption(new Option('--threads <n>', 'CPU threads per local model context (env SWITCHBOARD_THREADS; default 1)'))
    .addOption(new Option('--gpu <backend>', 'run local models on a GPU: auto|cuda|vulkan|metal|false (env SWITCHBOARD_GPU; default false)'))
    .addOption(new Option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent'))
    .addOption(new Option('--no-warm-up', 'do not load the default model before accepting requests'))
    .action(async (flags: ConfigFlags & { warmUp: boolean }) => {
      const config = configFromFlags(flags);
      const server = await createServer({ config });
      // Bound before the warm-up: a taken port or a refused address shows at once, not after a
      // model download; requests that come meanwhile wait for the model, and /health/ready says
      // so. The line below is still printed only once the model is loaded.
      const url = await server.listen();
      let stopping = false;
      const stop = async (signal: string) => {
        // A second signal does not wait for the requests in flight.
        if (stopping) process.exit(1);
        stopping = true;
        const { logger, config } = server.context;
        logger.info({ signal, requests: server.app.inFlight.size, graceSeconds: config.server.shutdownGraceSeconds }, 'shutting down: finishing the requests in flight');
        await server.close().catch((err: unknown) => logger.error({ err }, 'shutdown failed'));
        logger.info('stopped');
        process.exit(0);
      };
      // Set before the warm-up (a first download can take minutes): a stop then is an orderly one,
      // the requests waiting for the model ending with 503 server_shutting_down, not a killed process.
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
      if (flags.warmUp) {
        server.context.logger.info({ model: server.context.gateway.registry.defaultModel.id }, 'loading the default model');
        await server.context.gateway.warmUp();
      }
      if (stopping) return;
      server.context.logger.info({ url, defaultModel: server.context.gateway.registry.defaultModel.id, store: server.context.store.kind }, 'switchboard listening');
      // A line tests and scripts can wait for.
      process.stdout.write(`switchboard listening on ${url}\n`);
    });
}
