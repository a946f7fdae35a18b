import fs from 'node:fs';
import { TfvlmError } from '../errors.ts';
import { listFrameFiles } from '../io/video.ts';
import { captionRequest, DEFAULT_CAPTION_PROMPT, DEFAULT_VIDEO_PROMPT, isVideoInput } from '../tasks/prompts.ts';
import type { Command } from './command.ts';
import { GENERATION_HELP, GENERATION_OPTIONS, generationOptions, loadOptions } from './generation-flags.ts';
import { MODEL_OPTION_HELP, modelSpec } from './model-option.ts';
import { streamToStdout, withModel } from './run-generation.ts';

export const describeCommand: Command = {
  name: 'describe',
  summary: 'caption images and videos',
  usage: `Usage: tfvlm describe IMAGE|VIDEO… [--prompt P] [--model DIR|ID] [generation options]

Captions the images and videos, all in one user turn: several images get one answer about all of
them (to caption images one by one, use tfvlm batch). A video is a video file (through
ffmpeg), an animated GIF or a folder of frames, sampled at the checkpoint's video_sampling
fps/max_frames and prompted as SmolVLM2 is (SmolVLM-family models). The answer streams to stdout;
timings go to stderr.
  --prompt P          the instruction (default "${DEFAULT_CAPTION_PROMPT}", for one video "${DEFAULT_VIDEO_PROMPT}")
  ${MODEL_OPTION_HELP}

${GENERATION_HELP}`,
  options: { model: { type: 'string' }, prompt: { type: 'string' }, ...GENERATION_OPTIONS },
  allowPositionals: true,
  async run(args) {
    if (args.positionals.length === 0) throw new TfvlmError('tfvlm describe: give at least one IMAGE or VIDEO');
    if (!args.values.quiet) for (const note of inputNotes(args.positionals)) process.stderr.write(`tfvlm describe: ${note}\n`);
    const request = captionRequest(args.positionals, args.values.prompt as string | undefined);
    const options = generationOptions(args, 'describe');
    return withModel(modelSpec(args), (vlm) => streamToStdout(vlm, request, options, args.values as { json?: boolean; quiet?: boolean }), loadOptions(args, 'describe'));
  },
};

const ONE_BY_ONE = 'to caption images one by one, run `tfvlm batch --input FOLDER|ITEMS.jsonl --output RESULTS.jsonl`';

/** What the inputs mean, when it may not be what was meant: folders (one video) and several images (one answer). */
function inputNotes(inputs: string[]): string[] {
  const notes: string[] = [];
  for (const input of inputs) {
    if (!fs.statSync(input, { throwIfNoEntry: false })?.isDirectory()) continue;
    const frames = listFrameFiles(input).length;
    notes.push(`${input} is a folder: read as the frames of one video (${frames} images, in name order); ${ONE_BY_ONE}`);
  }
  const images = inputs.filter((i) => !isVideoInput(i)).length;
  if (images > 1) notes.push(`${images} images go into one user turn and get one answer; ${ONE_BY_ONE}`);
  return notes;
}
