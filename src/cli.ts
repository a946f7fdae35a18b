// The `tfvlm` command: a thin shell over the library API. Each subcommand lives in src/cli/.
import { readFileSync } from 'node:fs';
import { runCommand, type Command } from './cli/command.ts';
import { envCommand } from './cli/env.ts';
import { downloadCommand } from './cli/download.ts';
import { describeCommand } from './cli/describe.ts';
import { askCommand } from './cli/ask.ts';
import { batchCommand } from './cli/batch.ts';
import { chatCommand } from './cli/chat.ts';
import { generateCommand } from './cli/generate.ts';
import { promptCommand } from './cli/prompt.ts';
import { preprocessCommand } from './cli/preprocess.ts';
import { forwardCommand } from './cli/forward.ts';
import { embedCommand } from './cli/embed.ts';
import { retrieveCommand } from './cli/retrieve.ts';
import { trainCommand } from './cli/train.ts';
import { quantizeCommand } from './cli/quantize.ts';
import { serveCommand } from './cli/serve.ts';
import { workerCommand } from './cli/worker.ts';

const COMMANDS: Command[] = [
  describeCommand, askCommand, batchCommand, workerCommand, chatCommand, generateCommand, serveCommand,
  retrieveCommand, embedCommand, forwardCommand, promptCommand, preprocessCommand,
  trainCommand, quantizeCommand, downloadCommand, envCommand,
];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'Usage: tfvlm <command> [options]',
    '',
    'Vision-language models (SmolVLM, LLaVA, CLIP, SigLIP) on TensorFlow.js, matching Hugging Face transformers.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Run `tfvlm <command> --help` for the options of one command; `tfvlm --version` for the version.',
  ].join('\n');
}

/** The package's version (package.json beside src/). */
function version(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 1;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`tfvlm ${version()}\n`);
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`tfvlm: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  return runCommand(cmd, rest);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv.slice(2));
}
