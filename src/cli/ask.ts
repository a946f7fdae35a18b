import { TfvlmError } from '../errors.ts';
import { questionRequest } from '../tasks/prompts.ts';
import { requireString, type Command } from './command.ts';
import { GENERATION_HELP, GENERATION_OPTIONS, generationOptions, loadOptions } from './generation-flags.ts';
import { MODEL_OPTION_HELP, modelSpec } from './model-option.ts';
import { streamToStdout, withModel } from './run-generation.ts';

export const askCommand: Command = {
  name: 'ask',
  summary: 'answer a question about one or more images or videos (VQA)',
  usage: `Usage: tfvlm ask IMAGE|VIDEO… --question Q [--model DIR|ID] [generation options]

Asks Q about the images and videos (all in one user turn; a video file, animated GIF or folder of
frames is a video, for SmolVLM-family models). The answer streams to stdout; timings go to stderr.
  --question Q        the question
  ${MODEL_OPTION_HELP}

${GENERATION_HELP}`,
  options: { model: { type: 'string' }, question: { type: 'string' }, ...GENERATION_OPTIONS },
  allowPositionals: true,
  async run(args) {
    if (args.positionals.length === 0) throw new TfvlmError('tfvlm ask: give at least one IMAGE or VIDEO');
    const request = questionRequest(args.positionals, requireString(args, 'question', 'ask'));
    const options = generationOptions(args, 'ask');
    return withModel(modelSpec(args), (vlm) => streamToStdout(vlm, request, options, args.values as { json?: boolean; quiet?: boolean }), loadOptions(args, 'ask'));
  },
};
