import { TfvlmError } from '../errors.ts';
import { jsonLine } from './json-output.ts';
import { VlmProcessor } from '../processing/processor.ts';
import { resolveModel } from '../io/hub/index.ts';
import type { Command } from './command.ts';
import { imageSplitting } from './generation-flags.ts';
import { MODEL_OPTION_HELP, modelSpec } from './model-option.ts';
import { REQUEST_HELP, REQUEST_OPTIONS, requestFromArgs } from './request.ts';

export const promptCommand: Command = {
  name: 'prompt',
  summary: 'show the rendered prompt, the expanded prompt and the token ids of a request',
  usage: `Usage: tfvlm prompt [--model DIR|ID] (--messages M.json | --prompt P [--image F …] [--video F …]) [--image-splitting on|off] [--json]

Prints what the model would be given: the chat-template rendering, the prompt after each <image>
(and <video>) became its token block, the token ids, each image's tile grid and each video's
sampled frame times. Loads no weights.
  ${MODEL_OPTION_HELP}
  --json              one JSON object instead of text

${REQUEST_HELP}`,
  options: { model: { type: 'string' }, ...REQUEST_OPTIONS, 'image-splitting': { type: 'string' }, json: { type: 'boolean' } },
  async run(args) {
    const request = requestFromArgs(args, 'prompt');
    const processor = await VlmProcessor.load(await resolveModel(modelSpec(args)));
    const split = imageSplitting(args, 'prompt');
    const out = await processor.fromRequest(request, { imageSplitting: split });
    const [prompt] = out.prompts;
    const [expanded] = out.promptsExpanded;
    const [ids] = out.input_ids;
    if (out.input_ids.length !== 1 || ids === undefined || prompt === undefined || expanded === undefined) {
      throw new TfvlmError('tfvlm prompt: expected one conversation');
    }
    const grid = out.rows.map((r, i) => ({ rows: r, cols: out.cols[i] }));
    if (args.values.json) {
      process.stdout.write(jsonLine({
        prompt, prompt_expanded: expanded, input_ids: ids,
        num_tokens: ids.length, images: grid, videos: out.videos, pixel_values_shape: out.pixelShape ?? null,
      }));
      return 0;
    }
    const w = (s: string) => process.stdout.write(s + '\n');
    w('# prompt'); w(prompt);
    w('# prompt_expanded'); w(expanded);
    w(`# input_ids (${ids.length} tokens)`); w(JSON.stringify(ids));
    if (grid.length) w(`# images: ${grid.map((g) => (g.rows ? `${g.rows}x${g.cols} tiles + global` : 'not split')).join(', ')}`);
    for (const v of out.videos) w(`# video: ${v.timestamps.length} frames at ${v.timestamps.map((t) => `${+t.toFixed(3)}s`).join(', ')} of ${+v.duration.toFixed(3)}s`);
    if (out.pixelShape) w(`# pixel_values [${out.pixelShape}]`);
    return 0;
  },
};
