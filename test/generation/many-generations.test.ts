// 200 consecutive generations leave tensors and RSS flat.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from '../helpers/paths.ts';
import { tf } from '../../src/backend/index.ts';
import { Vlm } from '../../src/engine.ts';

describe('200 consecutive generations', () => {
  let vlm: Vlm;
  before(async () => { vlm = await Vlm.load(fixture('tiny-smolvlm')); });
  after(() => vlm.dispose());

  it('keep tf.memory().numTensors and RSS flat', async () => {
    const image = fixture('tiny-smolvlm', 'golden', 'inputs', 'small_64x48.png');
    const request = (i: number) => ({
      messages: [{ role: 'user', content: [...(i % 10 === 0 ? [{ type: 'image', image }] : []), { type: 'text', text: `Say something ${i}` }] }],
    });
    const run = async (i: number) => vlm.generate(request(i), { maxNewTokens: 4, imageSplitting: false, doSample: i % 2 === 0, seed: i });
    for (let i = 0; i < 20; i++) await run(i);
    global.gc?.();
    const tensors = tf.memory().numTensors;
    const rss = process.memoryUsage().rss;
    for (let i = 20; i < 220; i++) await run(i);
    global.gc?.();
    assert.equal(tf.memory().numTensors, tensors);
    const grownMB = (process.memoryUsage().rss - rss) / 2 ** 20;
    assert.ok(grownMB < 40, `RSS grew by ${grownMB.toFixed(1)} MB over 200 generations`);
  });
});
