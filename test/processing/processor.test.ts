// The whole request → inputs path against the goldens: rendered prompt, expanded prompt, ids, mask,
// pixels, grid — for every single-sample and batched case of tiny-smolvlm (also in its SmolVLM2 layout,
// tiny-smolvlm2) and tiny-llava.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fixture } from '../helpers/paths.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { VlmProcessor } from '../../src/processing/processor.ts';

interface Case {
  name: string;
  batch?: number;
  images: string[] | string[][];
  messages?: unknown;
  prompt: string | string[];
  prompt_expanded: string | string[];
  input_ids: number[] | number[][];
  attention_mask: number[] | number[][];
  do_image_splitting?: boolean;
  image_rows?: number[] | number[][];
  image_cols?: number[] | number[][];
}

function goldenPixels(folder: string, name: string) {
  const f = SafetensorsFile.open(fixture(folder, 'golden', `${name}.inputs.safetensors`));
  try {
    const mask = f.has('pixel_attention_mask') ? f.readArray('pixel_attention_mask') : undefined;
    return { pixels: f.readArray('pixel_values') as Float32Array, shape: f.entry('pixel_values').shape, mask };
  } finally {
    f.close();
  }
}

for (const folder of ['tiny-smolvlm', 'tiny-smolvlm2', 'tiny-smolvlm-patch', 'tiny-llava']) {
  const cases: Case[] = JSON.parse(fs.readFileSync(fixture(folder, 'golden', 'cases.json'), 'utf8')).cases;
  describe(`VlmProcessor: ${folder}`, () => {
    for (const c of cases) {
      it(`${c.name}: prompt, ids, mask and pixels equal transformers'`, async () => {
        const processor = await VlmProcessor.load(fixture(folder));
        const batched = c.batch !== undefined;
        const imageLists = (batched ? c.images : [c.images]) as string[][];
        const paths = imageLists.map((l) => l.map((p) => fixture(folder, 'golden', p)));
        const splitting = c.do_image_splitting;
        const out = c.messages
          ? await processor.fromMessages(batched ? (c.messages as unknown[][]) : [c.messages as unknown[]], {
              images: paths,
              ...(splitting === undefined ? {} : { imageSplitting: splitting }),
            })
          : await processor.fromPrompt(c.prompt as string, paths[0]);
        const rows = (x: unknown): unknown[] => (batched ? (x as unknown[]) : [x]);
        assert.deepEqual(out.prompts, rows(c.prompt));
        assert.deepEqual(out.promptsExpanded, rows(c.prompt_expanded));
        assert.deepEqual(out.input_ids, rows(c.input_ids));
        assert.deepEqual(out.attention_mask, rows(c.attention_mask));
        if (c.image_rows && c.image_cols) {
          assert.deepEqual(out.rows, rows(c.image_rows).flat());
          assert.deepEqual(out.cols, rows(c.image_cols).flat());
        }
        const golden = goldenPixels(folder, c.name);
        assert.deepEqual(out.pixelShape, golden.shape);
        assertClose(out.pixel_values!, golden.pixels, TOLERANCE.pixels, 'pixel_values');
        if (golden.mask) assert.deepEqual(Array.from(out.pixel_attention_mask!), Array.from(golden.mask).map(Number));
      });
    }
  });
}

describe('VlmProcessor: LLaVA-1.5 format for a llava folder without a chat template', () => {
  it('renders the golden multi-turn and single-image prompts from chat messages', async () => {
    const processor = await VlmProcessor.load(fixture('tiny-llava'));
    const img = (name: string) => fixture('tiny-llava', 'golden', 'inputs', name);
    const multi = await processor.fromMessages([
      { role: 'user', content: [{ type: 'image', image: img('small_40x52.png') }, { type: 'text', text: 'Describe the picture.' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'A red car parked near a building.' }] },
      { role: 'user', content: [{ type: 'text', text: 'What colour is the sky?' }] },
    ]);
    const cases: Case[] = JSON.parse(fs.readFileSync(fixture('tiny-llava', 'golden', 'cases.json'), 'utf8')).cases;
    const golden = cases.find((c) => c.name === 'multi_turn_small_image')!;
    assert.equal(multi.prompts[0], golden.prompt);
    assert.deepEqual(multi.input_ids[0], golden.input_ids);
  });
});
