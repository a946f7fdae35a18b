// pixel_values (and Idefics3 pixel_attention_mask / rows / cols) of every tiny-* golden case, made
// from golden/inputs/*.png with the folder's preprocessor_config.json, against transformers 4.47.1
// (tiny-smolvlm2: the same goldens through SmolVLM2's SmolVLMImageProcessor config).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fixture } from '../helpers/paths.ts';
import { TOLERANCE, assertClose } from '../helpers/compare.ts';
import { createImageProcessor, loadPreprocessorConfig } from '../../src/processing/preprocessor-config.ts';
import { Idefics3ImageProcessor } from '../../src/processing/idefics3-image-processor.ts';
import { loadInputs, readGolden } from './goldens.ts';

interface Case {
  name: string;
  batch?: number;
  images: string[] | string[][];
  image_rows?: number[] | number[][];
  image_cols?: number[] | number[][];
}

const casesOf = (folder: string): Case[] =>
  (JSON.parse(fs.readFileSync(fixture(folder, 'golden', 'cases.json'), 'utf8')) as { cases: Case[] }).cases;

for (const folder of ['tiny-smolvlm', 'tiny-smolvlm2', 'tiny-smolvlm-patch']) {
  describe(`${folder} pixel inputs`, () => {
    const processor = createImageProcessor(loadPreprocessorConfig(fixture(folder)));
    assert.ok(processor instanceof Idefics3ImageProcessor);
    for (const c of casesOf(folder)) {
      it(c.name, async () => {
        const samples = c.batch ? (c.images as string[][]) : [c.images as string[]];
        const bitmaps = await Promise.all(samples.map((s) => loadInputs(folder, s)));
        // nosplit_single was made with splitting turned off, the others with the config's default (on)
        const split = (c.image_rows as number[]).flat().some((r) => r > 0);
        const out = processor.preprocess(bitmaps, { do_image_splitting: split });
        const golden = readGolden(fixture(folder, 'golden', `${c.name}.inputs.safetensors`));
        const pv = golden.get('pixel_values')!;
        assert.deepEqual(out.shape, pv.shape);
        assertClose(out.pixel_values, pv.data, TOLERANCE.pixels, 'pixel_values');
        const mask = golden.get('pixel_attention_mask')!;
        assert.deepEqual(Array.from(out.pixel_attention_mask!), Array.from(mask.data), 'pixel_attention_mask');
        assert.deepEqual(out.rows, (c.image_rows as number[]).flat());
        assert.deepEqual(out.cols, (c.image_cols as number[]).flat());
      });
    }
  });
}

describe('smolvlm-256m-real-tokenizer prompt cases: rows/cols of blank images with the published config', () => {
  const processor = createImageProcessor(loadPreprocessorConfig(fixture('smolvlm-256m-real-tokenizer')));
  assert.ok(processor instanceof Idefics3ImageProcessor);
  const cases = (JSON.parse(fs.readFileSync(fixture('smolvlm-256m-real-tokenizer', 'golden', 'prompt_cases.json'), 'utf8')) as {
    cases: { name: string; image_sizes_wh: [number, number][]; do_image_splitting: boolean; rows?: number[]; cols?: number[] }[];
  }).cases;
  for (const c of cases.filter((x) => x.image_sizes_wh.length > 0)) {
    it(c.name, () => {
      const blank = c.image_sizes_wh.map(([w, h]) => ({ width: w, height: h, mode: 'RGB' as const, data: new Uint8Array(w * h * 3) }));
      const out = processor.preprocess(blank, { do_image_splitting: c.do_image_splitting });
      assert.deepEqual([out.rows, out.cols], [c.rows, c.cols]);
    });
  }
});

for (const folder of ['tiny-llava', 'tiny-clip', 'tiny-siglip']) {
  describe(`${folder} pixel inputs`, () => {
    const processor = createImageProcessor(loadPreprocessorConfig(fixture(folder)));
    assert.ok(!(processor instanceof Idefics3ImageProcessor));
    for (const c of casesOf(folder)) {
      it(c.name, async () => {
        const out = processor.preprocess(await loadInputs(folder, c.images as string[]));
        const pv = readGolden(fixture(folder, 'golden', `${c.name}.inputs.safetensors`)).get('pixel_values')!;
        assert.deepEqual(out.shape, pv.shape);
        assertClose(out.pixel_values, pv.data, TOLERANCE.pixels, 'pixel_values');
      });
    }
  });
}
