import { TfvlmError } from '../errors.ts';
import { captionRequest, DEFAULT_CAPTION_PROMPT } from '../tasks/prompts.ts';
import type { Command } from './command.ts';
import { GENERATION_HELP, GENERATION_OPTIONS, generationOptions } from './generation-flags.ts';
import { MODEL_OPTION_HELP, modelSpec } from './model-option.ts';
import { streamToStdout, withModel } from './run-generation.ts';

export const describeCommand: Command = {
  name: 'describe',
  summary: 'caption one or more images',
  usage: `Usage: tfvlm describe IMAGE… [--prompt P] [--model DIR|ID] [generation options]

Captions the images (all in one user turn). The answer streams to stdout; timings go to stderr.
  --prompt P          the instruction (default "${DEFAULT_CAPTION_PROMPT}")
  ${MODEL_OPTION_HELP}

${GENERATION_HELP}`,
  options: { model: { type: 'string' }, prompt: { type: 'string' }, ...GENERATION_OPTIONS },
  allowPositionals: true,
  async run(args) {
    if (args.positionals.length === 0) throw new TfvlmError('tfvlm describe: give at least one IMAGE');
    const request = captionRequest(args.positionals, (args.values.prompt as string | undefined) ?? DEFAULT_CAPTION_PROMPT);
    const options = generationOptions(args, 'describe');
    await withModel(modelSpec(args), (vlm) => streamToStdout(vlm, request, options, args.values as { json?: boolean; quiet?: boolean }));
    return 0;
  },
};
