// Several images through the engine API (Vlm.prepare): across turns with a system message (the
// tiny-smolvlm multi_turn_two_images golden: ids, grids, pixels), and several images in one user turn
// for SmolVLM and LLaVA — each image expanded by its own grid, in prompt order, exactly the block it
// gets when it is alone (Idefics3Processor / LlavaProcessor expand each <image> independently).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { initBackend } from '../../src/backend/index.ts';
import { Vlm } from '../../src/engine.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { userTurn } from '../../src/tasks/prompts.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';

const smol = (f: string) => fixture('tiny-smolvlm', 'golden', 'inputs', f);

/** The expansion of the single <image> in a one-conversation prompt inside its expanded form. */
function imageBlock({ prompts: [prompt], promptsExpanded: [expanded] }: { prompts: string[]; promptsExpanded: string[] }): string {
  assert.ok(prompt !== undefined && expanded !== undefined, 'a prompt and its expansion');
  const [before, after] = prompt.split('<image>');
  assert.ok(before !== undefined && after !== undefined && expanded.startsWith(before) && expanded.endsWith(after));
  return expanded.slice(before.length, expanded.length - after.length);
}

describe('multiple images (tiny-smolvlm)', () => {
  let vlm: Vlm;
  before(async () => {
    await initBackend();
    vlm = await Vlm.load(fixture('tiny-smolvlm'));
  });
  after(() => vlm?.dispose());

  it('multi_turn_two_images: images given inline in the messages → the golden ids, grids and pixels', async () => {
    const c = JSON.parse(fs.readFileSync(fixture('tiny-smolvlm', 'golden', 'cases.json'), 'utf8')).cases
      .find((x: { name: string }) => x.name === 'multi_turn_two_images');
    let k = 0;
    const messages = (c.messages as Array<{ role: string; content: Array<Record<string, string>> }>).map((m) => ({
      role: m.role,
      content: m.content.map((p) => (p.type === 'image' ? { type: 'image', image: fixture('tiny-smolvlm', 'golden', c.images[k++]) } : p)),
    }));
    const out = await vlm.prepare({ messages });
    assert.equal(out.prompts[0], c.prompt);
    assert.deepEqual(out.input_ids[0], c.input_ids);
    assert.deepEqual([out.rows, out.cols], [c.image_rows, c.image_cols]);
    const f = SafetensorsFile.open(fixture('tiny-smolvlm', 'golden', 'multi_turn_two_images.inputs.safetensors'));
    try {
      assert.deepEqual(out.pixelShape, f.entry('pixel_values').shape);
      assertClose(out.pixel_values!, f.readArray('pixel_values') as Float32Array, TOLERANCE.pixels, 'pixel_values');
    } finally {
      f.close();
    }
  });

  it('two images in one user turn: each gets the block of its own grid, in order', async () => {
    const [a, b] = [smol('tall_90x140.png'), smol('wide_150x100.png')];
    const both = await vlm.prepare(userTurn([a, b], 'Compare the two images.'));
    const alone = await Promise.all([vlm.prepare(userTurn([a], 'Compare the two images.')), vlm.prepare(userTurn([b], 'Compare the two images.'))]);
    assert.deepEqual(both.rows, alone.flatMap((x) => x.rows));
    assert.deepEqual(both.cols, alone.flatMap((x) => x.cols));
    assert.notDeepEqual(alone[0].rows.concat(alone[0].cols), alone[1].rows.concat(alone[1].cols), 'the two grids differ');
    const [blockA, blockB] = [imageBlock(alone[0]), imageBlock(alone[1])];
    const [prompt] = both.prompts;
    assert.ok(prompt !== undefined, 'a prompt');
    const [p0, p1, p2] = prompt.split('<image>');
    assert.ok(p0 !== undefined && p1 !== undefined && p2 !== undefined, 'two <image> in the prompt');
    assert.equal(both.promptsExpanded[0], p0 + blockA + p1 + blockB + p2);
    assert.deepEqual(both.input_ids[0], vlm.tokenizer.encode(both.promptsExpanded[0]));
    assert.equal(both.pixelShape![1], alone[0].pixelShape![1]! + alone[1].pixelShape![1]!, 'tiles of both images, in order');
  });
});

describe('multiple images (tiny-llava)', () => {
  let vlm: Vlm;
  before(async () => {
    await initBackend();
    vlm = await Vlm.load(fixture('tiny-llava'));
  });
  after(() => vlm?.dispose());

  it('two images in one turn and a third in a later turn: 49 <image> tokens each, pixels [3, 3, 56, 56]', async () => {
    const img = (f: string) => fixture('tiny-llava', 'golden', 'inputs', f);
    const files = fs.readdirSync(fixture('tiny-llava', 'golden', 'inputs')).filter((f) => f.endsWith('.png')).slice(0, 3);
    const [first, second] = files;
    assert.ok(first && second, 'at least two input PNGs');
    const third = files[2] ?? first;
    const out = await vlm.prepare({
      messages: [
        { role: 'user', content: [{ type: 'image', image: img(first) }, { type: 'image', image: img(second) }, { type: 'text', text: 'Same scene?' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'No.' }] },
        { role: 'user', content: [{ type: 'image', image: img(third) }, { type: 'text', text: 'And this?' }] },
      ],
    });
    const imageId = vlm.processor.imageTokenId;
    const [ids] = out.input_ids;
    const [prompt] = out.prompts;
    assert.ok(ids && prompt !== undefined, 'one conversation');
    assert.equal(ids.filter((id) => id === imageId).length, 3 * 49);
    assert.deepEqual(out.pixelShape, [3, 3, 56, 56]);
    assert.equal(prompt.split('<image>').length - 1, 3);
  });
});
