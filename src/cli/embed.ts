// `tfvlm embed IMAGE… [--text T …] --model DIR [--out OUT.safetensors] [--json]`: image (and text)
// embeddings. CLIPModel / SiglipModel folders go through the dual encoder (both towers); vision-only
// folders (CLIPVisionModel(WithProjection), LLaVA's tower) give image embeddings (pooled CLS →
// visual_projection → L2 norm) with the folder's own CLIPImageProcessor.
import { jsonLine } from './json-output.ts';
import { initBackend, tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { loadImage } from '../io/image.ts';
import { resolveModel } from '../io/hub/index.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { CLIPImageEncoder } from '../models/clip-image-encoder.ts';
import { CLIPImageProcessor } from '../processing/clip-image-processor.ts';
import { createImageProcessor, loadPreprocessorConfig } from '../processing/preprocessor-config.ts';
import { DualEncoder, isDualEncoderFolder } from '../tasks/dual-encoder.ts';
import type { Command } from './command.ts';
import { MODEL_OPTION_HELP, modelSpec } from './model-option.ts';

export const embedCommand: Command = {
  name: 'embed',
  summary: 'image and text embeddings (CLIP / SigLIP dual encoders; CLIP vision towers)',
  usage: `Usage: tfvlm embed [IMAGE…] [--text T …] --model DIR|ID [--out OUT.safetensors] [--json]

CLIPModel / SiglipModel folders: image_embeds and text_embeds (pooled, projected, L2-normalised),
through both towers and the folder's processor and tokenizer.
Vision-only folders (CLIPVisionModelWithProjection, CLIPVisionModel, LLaVA's CLIP tower): image
embeddings (the projected pooled CLS, or the pooled CLS without a projection, L2-normalised).
Prints one line per input (width and the first values) to stdout.
  --text T            a text to embed (repeatable; dual encoders only)
  ${MODEL_OPTION_HELP}
  --out OUT           also write image_embeds [n_images, dim] / text_embeds [n_texts, dim] (float32) to OUT.safetensors
  --json              print the embeddings as JSON instead
  --convert-rgb       convert images to RGB whatever the preprocessor config says (RGBA or gray into a SigLIP processor without do_convert_rgb)`,
  options: {
    model: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' }, text: { type: 'string', multiple: true },
    'convert-rgb': { type: 'boolean' },
  },
  allowPositionals: true,
  async run(args) {
    const texts = ((args.values.text as string[] | undefined) ?? []).map(String);
    if (args.positionals.length === 0 && texts.length === 0) throw new TfvlmError('tfvlm embed: give at least one IMAGE or --text');
    const out = args.values.out;
    if (out !== undefined && (typeof out !== 'string' || out.length === 0)) throw new TfvlmError('tfvlm embed: --out needs a file name');
    await initBackend(undefined, { syncReads: 'embedding' });
    const dir = await resolveModel(modelSpec(args));
    const convertRgb = !!args.values['convert-rgb'];
    if (isDualEncoderFolder(dir)) return embedDual(dir, args.positionals, texts, out as string | undefined, !!args.values.json, convertRgb);
    if (texts.length) throw new TfvlmError(`${dir}: --text needs a dual encoder (CLIPModel / SiglipModel); this folder has only a vision tower`);
    const processor = createImageProcessor(loadPreprocessorConfig(dir, { convertRgb }));
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
        process.stdout.write(jsonLine({ model: dir, images: args.positionals, shape, projected, image_embeds: rows }));
      } else {
        args.positionals.forEach((p, i) => {
          const head = rows[i]!.slice(0, 4).map((v) => v.toFixed(4)).join(', ');
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

async function embedDual(
  dir: string, images: string[], texts: string[], out: string | undefined, json: boolean, convertRgb: boolean,
): Promise<number> {
  const encoder = await DualEncoder.load(dir, { convertRgb });
  try {
    const t0 = performance.now();
    const embeds = await encoder.embedArrays(images, texts);
    const ms = performance.now() - t0;
    const rows = (e: { data: Float32Array; shape: [number, number] } | undefined) =>
      e ? Array.from({ length: e.shape[0] }, (_, i) => Array.from(e.data.subarray(i * e.shape[1], (i + 1) * e.shape[1]))) : [];
    if (out) {
      const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
      for (const key of ['image_embeds', 'text_embeds'] as const) {
        const e = embeds[key];
        if (e) tensors[key] = { dtype: 'F32', shape: e.shape, data: e.data };
      }
      writeSafetensors(out, tensors, { producer: 'tfvlm embed', model: dir });
    }
    if (json) {
      process.stdout.write(jsonLine({
        model: dir, images, texts, shape: embeds.image_embeds?.shape ?? null, projected: true,
        image_embeds: rows(embeds.image_embeds), text_shape: embeds.text_embeds?.shape ?? null, text_embeds: rows(embeds.text_embeds),
      }));
    } else {
      const show = (name: string, v: number[]) => process.stdout.write(`${name}: [${v.length}] ${v.slice(0, 4).map((x) => x.toFixed(4)).join(', ')}, …\n`);
      // One row per image and per text.
      rows(embeds.image_embeds).forEach((v, i) => show(images[i]!, v));
      rows(embeds.text_embeds).forEach((v, i) => show(JSON.stringify(texts[i]), v));
    }
    process.stderr.write(`dual-encoder embeddings of ${images.length} image(s), ${texts.length} text(s) in ${ms.toFixed(0)} ms${out ? ` → ${out}` : ''}\n`);
    return 0;
  } finally {
    encoder.dispose();
  }
}
