import { TfvlmError } from '../errors.ts';
import { jsonLine } from './json-output.ts';
import type { Command, ParsedArgs } from './command.ts';
import { downloadModel, type DownloadResult } from '../io/hub/download.ts';
import type { HubOptions } from '../io/hub/options.ts';
import { formatBytes } from '../io/hub/progress.ts';

export const downloadCommand: Command = {
  name: 'download',
  summary: 'fetch a model from the Hugging Face hub into the shared HF cache',
  usage: `Usage: tfvlm download ORG/NAME[@REVISION] [--revision R] [--json]

Downloads only the files tfvlm needs (config, safetensors weights and shards, tokenizer, processor,
chat template, generation config) into the Hugging Face cache layout, where transformers and
huggingface-cli find them too. Interrupted downloads resume. Prints the snapshot folder.

Environment: HF_HUB_CACHE / HF_HOME (cache location), HF_ENDPOINT (mirror), HF_TOKEN (gated or
private repos), HF_HUB_OFFLINE=1 (refuse to use the network).`,
  options: { revision: { type: 'string' }, json: { type: 'boolean' } },
  allowPositionals: true,
  async run(args) {
    const result = await runDownload(args);
    if (args.values.json) {
      process.stdout.write(jsonLine(result));
    } else {
      const fetched = result.bytesDownloaded > 0 ? `downloaded ${formatBytes(result.bytesDownloaded)}` : 'already in the cache';
      process.stderr.write(`${result.repoId}@${result.revision} (${result.commit.slice(0, 10)}): ${result.files.length} files, ${fetched}\n`);
      process.stdout.write(result.dir + '\n');
    }
    return 0;
  },
};

/** `tfvlm download ID [--revision R]` without the printing; `options` (env, cacheDir...) for tests and embedding. */
export async function runDownload(args: ParsedArgs, options: HubOptions = {}): Promise<DownloadResult> {
  const [id, ...extra] = args.positionals;
  if (id === undefined || extra.length > 0) throw new TfvlmError(`tfvlm download: expected one model id\n\n${downloadCommand.usage}`);
  const revision = typeof args.values.revision === 'string' ? args.values.revision : undefined;
  return downloadModel(id, { ...options, revision });
}
