// `tfvlm embed IMAGE… --model DIR [--out OUT.safetensors] [--json]`: CLIP image embeddings (pooled CLS →
// visual_projection → L2 norm) of a CLIPModel / CLIPVisionModel(WithProjection) / LLaVA vision tower,
// with the folder's own CLIPImageProcessor.
import { initBackend, tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { loadImage } from '../io/image.ts';
import { resolveModel } from '../io/hub/index.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { CLIPImageEncoder } from '../models/clip/image-encoder.ts';
import { CLIPImageProcessor } from '../processing/clip-image-processor.ts';
import { createImageProcessor, loadPreprocessorConfig } from '../processing/preprocessor-config.ts';
import type { Command } from './command.ts';
import { MODEL_OPTION_HELP, modelSpec } from './model-option.ts';

export const embedCommand: Command = {
  name: 'embed',
  summary: 'CLIP image embeddings (pooled, projected, L2-normalised) of one or more images',
  usage: `Usage: tfvlm embed IMAGE… --model DIR|ID [--out OUT.safetensors] [--json]

Runs the folder's CLIPImageProcessor (preprocessor_config.json) and its CLIP vision tower on the
images and prints one line per image (width and the first values) to stdout.
Works with CLIPModel and CLIPVisionModelWithProjection checkpoints (image_embeds = visual_projection
of the pooled CLS, L2-normalised) and with vision towers without a projection (CLIPVisionModel,
LLaVA: the pooled CLS, L2-normalised).
  ${MODEL_OPTION_HELP}
  --out OUT           also write image_embeds [n_images, dim] (float32) to OUT.safetensors
  --json              print {"model", "images", "shape", "projected", "image_embeds"} as JSON instead`,
  options: { model: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' } },
  allowPositionals: true,
  async run(args) {
    if (args.positionals.length === 0) throw new TfvlmError('tfvlm embed: give at least one IMAGE');
    const out = args.values.out;
    if (out !== undefined && (typeof out !== 'string' || out.length === 0)) throw new TfvlmError('tfvlm embed: --out needs a file name');
    await initBackend();
    const dir = await resolveModel(modelSpec(args));
    const processor = createImageProcessor(loadPreprocessorConfig(dir));
    if (!(processor instanceof CLIPImageProcessor)) {
      throw new TfvlmError(`${dir}/preprocessor_config.json: tfvlm embed needs a CLIPImageProcessor, got ${processor.constructor.name}`);
    }
    const encoder = await CLIPImageEncoder.load(dir);
    try {
      const images = await Promise.all(args.positionals.map((p) => loadImage(p)));
      const t0 = performance.now();
      const pixels = processor.preprocess(images);
      const pixelValues = tf.tensor(pixels.pixel_values, pixels.shape, 'float32');
      const embeds = encoder.embed(pixelValues);
      const values = embeds.dataSync() as Float32Array;
      const shape = embeds.shape;
      tf.dispose([pixelValues, embeds]);
      const ms = performance.now() - t0;
      const dim = shape[1] as number;
      const rows = args.positionals.map((_, i) => Array.from(values.subarray(i * dim, (i + 1) * dim)));
      if (typeof out === 'string') {
        writeSafetensors(out, { image_embeds: { dtype: 'F32', shape, data: values } }, { producer: 'tfvlm embed', model: dir });
      }
      if (args.values.json) {
        const projected = encoder.projection !== undefined;
        process.stdout.write(`${JSON.stringify({ model: dir, images: args.positionals, shape, projected, image_embeds: rows })}\n`);
      } else {
        args.positionals.forEach((p, i) => {
          const head = rows[i].slice(0, 4).map((v) => v.toFixed(4)).join(', ');
          process.stdout.write(`${p}: [${dim}] ${head}, …\n`);
        });
      }
      process.stderr.write(
        `${encoder.projection ? 'projected' : 'pooled (no visual_projection)'} embeddings [${shape}] in ${ms.toFixed(0)} ms` +
        `${typeof out === 'string' ? ` → ${out}` : ''}\n`,
      );
      return 0;
    } finally {
      encoder.dispose();
    }
  },
};
