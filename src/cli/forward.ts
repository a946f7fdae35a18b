import { tf } from '../backend/index.ts';
import { withProgressAsync } from '../util/progress.ts';
import { progressPrinter } from './progress-printer.ts';
import { TfvlmError } from '../errors.ts';
import { resolveModel } from '../io/hub/index.ts';
import { forwardToDump, parseCaptureList, readModelInputs, type ModelInputTensors } from '../models/forward-dump.ts';
import { VlmProcessor } from '../processing/processor.ts';
import { initBackend } from '../backend/index.ts';
import { requireString, type Command } from './command.ts';
import { dtypeOptions, imageSplitting } from './generation-flags.ts';
import { MODEL_OPTION_HELP, modelSpec } from './model-option.ts';
import { REQUEST_HELP, REQUEST_OPTIONS, requestFromArgs } from './request.ts';

export const forwardCommand: Command = {
  name: 'forward',
  summary: 'one forward pass, dumping logits and any intermediate activations',
  usage: `Usage: tfvlm forward [--model DIR|ID] (--inputs IN.safetensors | --messages M.json | --prompt P [--image F …])
                     --dump OUT.safetensors [--capture all|NAME,…] [--image-splitting on|off]

Runs the model once and writes logits plus the captured intermediates to OUT, named as in the
reference fixtures: vision.embeddings, vision.layers.{i}, vision.post_layernorm,
connector.pixel_shuffle, connector, text.inputs_embeds, text.layers.{i}, text.norm, logits
(LLaVA: vision.pre_layrnorm, projector.input, projector.linear_1, image_features).
Attention probabilities [B, heads, T, T] (transformers' output_attentions) are written only when
named: vision.layers.{i}.attn_weights, text.layers.{i}.attn_weights.
  --inputs IN         model inputs: input_ids [B,T] (+ attention_mask, pixel_values, pixel_attention_mask)
  --dump OUT          output .safetensors
  --capture LIST      'all' (default; without attention probabilities) or comma-separated names
  --dtype auto|q8|q4  quantize the language model while loading (as tfvlm generate; default auto)
  --group-size 32|64|128  with --dtype q8|q4 (default 64)
  -q, --quiet         no progress on stderr (loading past 1 GB, vision passes and prefill past 3 s show it)
  ${MODEL_OPTION_HELP}
With a request instead of --inputs, the processor builds the inputs and they are dumped too
(input_ids, attention_mask, pixel_values, pixel_attention_mask).

${REQUEST_HELP}`,
  options: {
    model: { type: 'string' }, inputs: { type: 'string' }, dump: { type: 'string' }, capture: { type: 'string' },
    'image-splitting': { type: 'string' }, dtype: { type: 'string' }, 'group-size': { type: 'string' },
    quiet: { type: 'boolean', short: 'q' }, ...REQUEST_OPTIONS,
  },
  async run(args) {
    const dump = requireString(args, 'dump', 'forward');
    const capture = parseCaptureList(args.values.capture as string | undefined);
    const load = dtypeOptions(args, 'forward');
    const dir = await resolveModel(modelSpec(args));
    await initBackend(undefined, { syncReads: 'writing the dump' });
    let inputs: ModelInputTensors;
    const fromFile = typeof args.values.inputs === 'string';
    if (fromFile) {
      if (args.values.messages !== undefined || args.values.prompt !== undefined) {
        throw new TfvlmError('tfvlm forward: give --inputs or a request (--messages / --prompt), not both');
      }
      inputs = readModelInputs(args.values.inputs as string);
    } else {
      const request = requestFromArgs(args, 'forward');
      const processor = await VlmProcessor.load(dir);
      const split = imageSplitting(args, 'forward');
      const p = await processor.fromRequest(request, { imageSplitting: split });
      const first = p.input_ids[0];
      if (!first) throw new TfvlmError('tfvlm forward: the request gave no prompt');
      const [B, T] = [p.input_ids.length, first.length];
      inputs = {
        input_ids: tf.tensor2d(p.input_ids.flat(), [B, T], 'int32'),
        attention_mask: tf.tensor2d(p.attention_mask.flat(), [B, T], 'int32'),
      };
      if (p.pixel_values && p.pixelShape) {
        inputs.pixel_values = tf.tensor(p.pixel_values, p.pixelShape, 'float32');
        if (p.pixel_attention_mask) {
          // [B, tiles, C, H, W] → [B, tiles, H, W]
          inputs.pixel_attention_mask = tf.tensor(p.pixel_attention_mask, p.pixelShape.filter((_, i) => i !== 2), 'bool');
        }
      }
    }
    try {
      const progress = args.values.quiet ? undefined : progressPrinter();
      const result = await withProgressAsync(progress, () => forwardToDump(dir, inputs, dump, { capture, includeInputs: !fromFile, load }));
      for (const t of result.tensors) process.stdout.write(`${t.name.padEnd(28)} [${t.shape.join(', ')}]\n`);
      if (result.missing.length) process.stderr.write(`not produced by this forward pass: ${result.missing.join(', ')}\n`);
      process.stderr.write(`[forward ${(result.ms / 1000).toFixed(2)} s → ${dump}]\n`);
    } finally {
      for (const t of Object.values(inputs)) t?.dispose();
    }
    return 0;
  },
};
