import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { readGgufFileInfo } from 'node-llama-cpp';
import { ModelRegistry, type ResolvedModel } from '../core/models.js';
import { checkProxySettings } from '../core/proxy.js';
import { localModelFile, pullModel } from '../providers/local/download.js';
import { checkGgufHeader } from '../providers/local/gguf-header.js';
import { parseModelSource } from '../providers/local/source.js';
import { configOptions } from './options.js';
import { configFromFlags, type ConfigFlags } from './serve.js';

const isRemoteSource = (source: string) => parseModelSource(source).kind !== 'file';

/**
 * The context a local model is served with: the configured size, or less when its GGUF was
 * trained for less (as the server loads it), read from the file's header when it is on disk.
 */
async function servedContext(model: ResolvedModel, file: string | undefined): Promise<number> {
  if (!model.contextLengthFromServer || !file) return model.contextLength;
  try {
    // node-llama-cpp reads a header with absurd counts for ever; serve checks it the same way.
    await checkGgufHeader(file);
    const info = await readGgufFileInfo(file, { readTensorInfo: false });
    const trained = Number(info.architectureMetadata.context_length);
    return trained > 0 ? Math.min(model.contextLength, trained) : model.contextLength;
  } catch {
    return model.contextLength; // not a readable GGUF: serve will say so
  }
}

export function registerModelsCommand(program: Command): void {
  const models = program.command('models').description('List the configured models, or download local ones.');

  configOptions(models.command('list'))
    .description('List every routable model: id, aliases, provider, upstream model, context, modalities, and for a local model whether its file is on disk (else serve or `models pull` downloads it).')
    .action(async (flags: ConfigFlags) => {
      const config = configFromFlags(flags);
      const registry = new ModelRegistry(config);
      process.stdout.write('ID\tALIASES\tPROVIDER\tUPSTREAM MODEL\tCONTEXT\tMODALITIES\tLOCAL FILE\n');
      for (const m of registry.models) {
        for (const d of m.deployments) {
          const onDisk = d.provider === 'local' ? localModelFile(d.model, config.local.cacheDir) : undefined;
          const file = d.provider === 'local' ? (onDisk ?? (isRemoteSource(d.model) ? 'not downloaded' : 'missing')) : '';
          const context = await servedContext(m, onDisk);
          process.stdout.write(`${m.id}\t${m.aliases.join(',')}\t${d.provider}\t${d.model}\t${context}\t${m.modalities.join(',')}\t${file}\n`);
        }
      }
    });

  configOptions(models.command('pull'))
    .description('Download a local model (default: the default model) into the cache, with a progress bar; resumes an interrupted download and verifies it.')
    .argument('[model]', 'model id/alias from the config, or a path, URL or hf: reference')
    .action(async (name: string | undefined, flags: ConfigFlags) => {
      const config = configFromFlags(flags);
      const registry = new ModelRegistry(config);
      const model = name ? registry.find(name) : registry.defaultModel;
      const deployment = model?.deployments.find((d) => d.provider === 'local');
      const source = deployment?.model ?? name;
      if (!source) throw new Error('Nothing to pull');
      if (model && !deployment) throw new Error(`Model '${model.id}' is not a local model`);
      // Neither a model of the config nor a URL, hf: reference or existing file: most likely a mistyped id.
      if (!model && !isRemoteSource(source) && !fs.existsSync(path.resolve(source))) {
        throw new Error(`'${source}' is no model id or alias of the config (${registry.names().join(', ')}) and no file`);
      }
      checkProxySettings();
      let verified: { bytes: number; sha256?: string } | undefined;
      const file = await pullModel(source, {
        cacheDir: config.local.cacheDir,
        sha256: deployment?.sha256,
        size: deployment?.size,
        progress: true,
        onVerified: (check) => (verified = check),
      });
      // What was checked, on stderr: the last line of stdout stays the path alone.
      if (verified) {
        const { bytes, sha256 } = verified;
        process.stderr.write(`verified: ${bytes} bytes, ${sha256 ? `sha256 ${sha256}` : 'no sha256 known (set one in the config to check it)'}\n`);
      } else if (isRemoteSource(source)) {
        process.stderr.write('already in the cache\n');
      }
      process.stdout.write(`${file}\n`);
    });
}
