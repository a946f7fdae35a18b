import { TfvlmError } from '../errors.ts';
import { captionRequest, DEFAULT_CAPTION_PROMPT, DEFAULT_VIDEO_PROMPT } from '../tasks/prompts.ts';
import type { Command } from './command.ts';
import { GENERATION_HELP, GENERATION_OPTIONS, generationOptions, loadOptions } from './generation-flags.ts';
import { MODEL_OPTION_HELP, modelSpec } from './model-option.ts';
import { streamToStdout, withModel } from './run-generation.ts';

export const describeCommand: Command = {
  name: 'describe',
  summary: 'caption images and videos',
  usage: `Usage: tfvlm describe IMAGE|VIDEO… [--prompt P] [--model DIR|ID] [generation options]

Captions the images and videos, all in one user turn. A video is a video file (through ffmpeg), an
animated GIF or a folder of frames, sampled at the checkpoint's video_sampling fps/max_frames and
prompted as SmolVLM2 is (SmolVLM-family models). The answer streams to stdout; timings go to stderr.
  --prompt P          the instruction (default "${DEFAULT_CAPTION_PROMPT}", for one video "${DEFAULT_VIDEO_PROMPT}")
  ${MODEL_OPTION_HELP}

${GENERATION_HELP}`,
  options: { model: { type: 'string' }, prompt: { type: 'string' }, ...GENERATION_OPTIONS },
  allowPositionals: true,
  async run(args) {
    if (args.positionals.length === 0) throw new TfvlmError('tfvlm describe: give at least one IMAGE or VIDEO');
    const request = captionRequest(args.positionals, args.values.prompt as string | undefined);
    const options = generationOptions(args, 'describe');
    return withModel(modelSpec(args), (vlm) => streamToStdout(vlm, request, options, args.values as { json?: boolean; quiet?: boolean }), loadOptions(args, 'describe'));
  },
};
