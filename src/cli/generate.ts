import type { Command } from './command.ts';
import { GENERATION_HELP, GENERATION_OPTIONS, generationOptions, loadOptions } from './generation-flags.ts';
import { MODEL_OPTION_HELP, modelSpec } from './model-option.ts';
import { REQUEST_HELP, REQUEST_OPTIONS, requestFromArgs } from './request.ts';
import { streamToStdout, withModel } from './run-generation.ts';

export const generateCommand: Command = {
  name: 'generate',
  summary: 'generate from chat messages or a raw prompt, with every sampling option',
  usage: `Usage: tfvlm generate [--model DIR|ID] (--messages M.json | --prompt P [--image F …]) [generation options]

  ${MODEL_OPTION_HELP}

${REQUEST_HELP}

${GENERATION_HELP}`,
  options: { model: { type: 'string' }, ...REQUEST_OPTIONS, ...GENERATION_OPTIONS },
  async run(args) {
    const request = requestFromArgs(args, 'generate');
    const options = generationOptions(args, 'generate');
    return withModel(modelSpec(args), (vlm) => streamToStdout(vlm, request, options, args.values as { json?: boolean; quiet?: boolean }), loadOptions(args, 'generate'));
  },
};
