import fs from 'node:fs';
import path from 'node:path';
import { TfvlmError } from '../errors.ts';
import { loadImage } from '../io/image.ts';
import { writeSafetensors, type RawTensor } from '../io/safetensors.ts';
import { Idefics3ImageProcessor } from '../processing/idefics3-image-processor.ts';
import { createImageProcessor, loadPreprocessorConfig } from '../processing/preprocessor-config.ts';
import { requireString, type Command } from './command.ts';
import { imageSplitting } from './generation-flags.ts';

export const preprocessCommand: Command = {
  name: 'preprocess',
  summary: 'run an image processor and dump pixel_values (+ pixel_attention_mask)',
  usage: `Usage: tfvlm preprocess --processor DIR IMAGE… --dump OUT.safetensors [--image-splitting on|off]

Runs the image processor of DIR/preprocessor_config.json (Idefics3, CLIP or SigLIP) on the images
as one sample, prints the tile grid of each image, and writes pixel_values (float32) and, for
Idefics3, pixel_attention_mask (uint8) to OUT.
  --processor DIR        folder with preprocessor_config.json (a model folder works)
  --dump OUT             output .safetensors
  --image-splitting on|off   override do_image_splitting (Idefics3)
  --convert-rgb          convert images to RGB whatever the config says (do_convert_rgb: true)`,
  options: { processor: { type: 'string' }, dump: { type: 'string' }, 'image-splitting': { type: 'string' }, 'convert-rgb': { type: 'boolean' } },
  allowPositionals: true,
  async run(args) {
    const dir = requireString(args, 'processor', 'preprocess');
    const dump = requireString(args, 'dump', 'preprocess');
    if (args.positionals.length === 0) throw new TfvlmError('tfvlm preprocess: give at least one IMAGE');
    const file = fs.existsSync(dir) && fs.statSync(dir).isDirectory() ? path.join(dir, 'preprocessor_config.json') : dir;
    const processor = createImageProcessor(loadPreprocessorConfig(file, { convertRgb: !!args.values['convert-rgb'] }));
    const images = await Promise.all(args.positionals.map((p) => loadImage(p)));
    const t0 = performance.now();
    const out = processor instanceof Idefics3ImageProcessor
      ? processor.preprocess([images], { do_image_splitting: imageSplitting(args, 'preprocess') })
      : processor.preprocess(images);
    const ms = performance.now() - t0;
    const tensors: Record<string, RawTensor> = { pixel_values: { dtype: 'F32', shape: out.shape, data: out.pixel_values } };
    if (out.pixel_attention_mask) {
      // [B, tiles, C, H, W] → [B, tiles, H, W]
      tensors.pixel_attention_mask = { dtype: 'U8', shape: out.shape.filter((_, i) => i !== 2), data: out.pixel_attention_mask };
    }
    writeSafetensors(dump, tensors, { producer: 'tfvlm preprocess' });
    args.positionals.forEach((p, i) => {
      const grid = out.rows[i] ? `${out.rows[i]} rows x ${out.cols[i]} cols + global` : 'not split';
      const image = images[i]!; // one per positional
      process.stdout.write(`${p}: ${image.width}x${image.height} ${image.mode} → ${grid}\n`);
    });
    process.stdout.write(`pixel_values [${out.shape}] → ${dump} (${ms.toFixed(0)} ms)\n`);
    return 0;
  },
};
