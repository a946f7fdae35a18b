// The lookup-attention diagnostic: token → cell mapping, and the shares of attention it reports on the shipped demo model.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { tf, initBackend } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { Idefics3Model } from '../../src/models/idefics3/model.ts';
import { VlmProcessor } from '../../src/processing/processor.ts';
import { imageTokenCells as tokenCells } from '../../examples/shapes-demo/scene.ts';
import { formatLookupAttention, lookupAttention } from '../../examples/shapes-demo/lookup-attention.ts';

const DEMO = fileURLToPath(new URL('../../weights/tfvlm-demo', import.meta.url));

describe('lookup attention', () => {
  let model: Idefics3Model;
  let processor: VlmProcessor;
  before(async () => {
    await initBackend();
    model = await Idefics3Model.load(DEMO);
    processor = await VlmProcessor.load(DEMO);
  });
  after(() => model.dispose());

  it('maps a square grid of image tokens onto the 3×3 cells', () => {
    assert.deepEqual(tokenCells(9), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    const six = tokenCells(36);
    assert.deepEqual([six[0], six[1], six[2], six[5], six[6 * 2 + 2], six[35]], [0, 0, 1, 2, 4, 8]);
    assert.deepEqual(tokenCells(1), [4]);
    assert.throws(() => tokenCells(10), TfvlmError);
  });

  it('reports, per text layer and head, shares of attention that add up to 1, without leaking tensors', async () => {
    const before = tf.memory().numTensors;
    const r = await lookupAttention(model, processor, 'where', { questions: 5 });
    assert.equal(tf.memory().numTensors, before);
    assert.equal(r.questions, 5);
    const { num_hidden_layers: layers, num_attention_heads: heads } = model.config.text_config;
    assert.equal(r.heads.length, layers * heads);
    for (const h of r.heads) {
      const total = h.named + h.otherShapes + h.emptyCells + h.text;
      assert.ok(Math.abs(total - 1) < 1e-4, `layer ${h.layer} head ${h.head}: shares add up to ${total}`);
      for (const v of [h.named, h.otherShapes, h.eachOtherShape, h.emptyCells, h.text]) assert.ok(v >= 0 && v <= 1);
      assert.ok(h.eachOtherShape <= h.otherShapes + 1e-9);
    }
    // Some head reads the image: the named shape gets weight somewhere.
    assert.ok(r.heads.some((h) => h.named > 0.1));
    assert.match(formatLookupAttention(r), /^where: 5 questions/);
  });
});
