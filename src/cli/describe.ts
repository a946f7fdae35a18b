import { TfvlmError } from '../errors.ts';
import { captionRequest, DEFAULT_CAPTION_PROMPT } from '../tasks/prompts.ts';
import { DEFAULT_VIDEO_PROMPT, isVideoInput, videoRequest } from '../tasks/video-request.ts';
import type { Command } from './command.ts';
import { GENERATION_HELP, GENERATION_OPTIONS, generationOptions } from './generation-flags.ts';
import { MODEL_OPTION_HELP, modelSpec } from './model-option.ts';
import { streamToStdout, withModel } from './run-generation.ts';

export const describeCommand: Command = {
  name: 'describe',
  summary: 'caption one or more images',
  usage: `Usage: tfvlm describe IMAGE… [--prompt P] [--model DIR|ID] [generation options]
       tfvlm describe VIDEO [--prompt P] …

Captions the images (all in one user turn), or a video: a video file (through ffmpeg), an
animated GIF or a folder of frames, sampled at the checkpoint's video_sampling fps/max_frames and
prompted as SmolVLM2 is. The answer streams to stdout; timings go to stderr.
  --prompt P          the instruction (default "${DEFAULT_CAPTION_PROMPT}", for a video "${DEFAULT_VIDEO_PROMPT}")
  ${MODEL_OPTION_HELP}

${GENERATION_HELP}`,
  options: { model: { type: 'string' }, prompt: { type: 'string' }, ...GENERATION_OPTIONS },
  allowPositionals: true,
  async run(args) {
    if (args.positionals.length === 0) throw new TfvlmError('tfvlm describe: give at least one IMAGE');
    const prompt = args.values.prompt as string | undefined;
    const options = generationOptions(args, 'describe');
    const flags = args.values as { json?: boolean; quiet?: boolean };
    const video = args.positionals.length === 1 && isVideoInput(args.positionals[0]) ? args.positionals[0] : undefined;
    await withModel(modelSpec(args), async (vlm) => {
      if (!video) return streamToStdout(vlm, captionRequest(args.positionals, prompt ?? DEFAULT_CAPTION_PROMPT), options, flags);
      const v = await videoRequest(vlm, video, prompt ?? DEFAULT_VIDEO_PROMPT);
      return streamToStdout(vlm, v.request, { ...options, ...v.options }, flags);
    });
    return 0;
  },
};
