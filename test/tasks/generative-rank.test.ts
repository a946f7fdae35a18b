// Generative retrieval on tiny-smolvlm: the batched, prefix-reusing score matrix equals a direct
// per-pair computation (one full forward over prompt + answer, log-softmax gathered) within 1e-4;
// the answer tokens follow the chat template's separator; no tensors leak across calls.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initBackend } from '../../src/backend/index.ts';
import { Vlm } from '../../src/engine.ts';
import { GenerativeRanker } from '../../src/tasks/generative-rank.ts';
import { ConcatKVCache } from '../../src/layers/kv-cache.ts';
import { fixture } from '../helpers/paths.ts';

const IMAGES = [fixture('tiny-smolvlm', 'golden', 'inputs', 'small_64x48.png'), fixture('tiny-smolvlm', 'golden', 'inputs', 'batch_b_160x40.png')];
const TEXTS: [string, string, string, string] = ['a cat', 'A red car parked near the tall building.', 'dogs', 'an astronaut holding a flag on the moon'];

describe('GenerativeRanker (tiny-smolvlm)', () => {
  let vlm: Vlm;
  let ranker: GenerativeRanker;
  before(async () => {
    await initBackend();
    vlm = await Vlm.load(fixture('tiny-smolvlm'));
    ranker = new GenerativeRanker(vlm, { batchSize: 3 });
  });
  after(() => vlm?.dispose());

  it('answers are tokenized after the template separator (" " after "Assistant:")', () => {
    assert.equal(ranker.answerSeparator(), ' ');
    assert.deepEqual(ranker.answerIds(['a cat'])[0], vlm.tokenizer.encode(' a cat', { addSpecialTokens: false }));
    assert.throws(() => ranker.answerIds(['  ']), /texts\[0\] must be a non-empty string/);
  });

  it('batched + prefix reuse = direct per-pair full forward, within 1e-4', async () => {
    const before = tf.memory().numTensors;
    const s = await ranker.score(IMAGES, TEXTS);
    assert.equal(tf.memory().numTensors, before, 'no tensors left behind');
    assert.equal(s.logProb.length, IMAGES.length);
    for (const [i, image] of IMAGES.entries()) {
      for (const [j, text] of TEXTS.entries()) {
        const direct = await ranker.scorePairDirect(image, text);
        const logProb = s.logProb[i]![j]!;
        assert.ok(Math.abs(logProb - direct) <= 1e-4, `image ${i} text ${j}: ${logProb} vs direct ${direct}`);
        assert.ok(Math.abs(s.meanLogProb[i]![j]! - direct / s.answerIds[j]!.length) <= 1e-5);
        assert.ok(logProb < 0);
      }
    }
    assert.equal(tf.memory().numTensors, before);
  });

  it('images ranked for a text: the column of the matrix', async () => {
    const column = await ranker.scoreImages(IMAGES, TEXTS[1]);
    const direct = await Promise.all(IMAGES.map((img) => ranker.scorePairDirect(img, TEXTS[1])));
    column.forEach((s, i) => assert.ok(Math.abs(s - direct[i]!) <= 1e-4, `image ${i}: ${s} vs ${direct[i]}`));
  });

  it('ConcatKVCache.tile repeats a batch-1 prefix and refuses larger batches', () => {
    const k = tf.randomNormal([1, 2, 3, 4]);
    const c = new ConcatKVCache();
    c.update(k, k);
    const t = c.tile(3);
    assert.equal(t.offset, 3);
    assert.equal(t.view().batch, 3);
    assert.throws(() => t.tile(2), /batch-1 prefix/);
    c.dispose();
    t.dispose();
    k.dispose();
  });
});

describe('GenerativeRanker (tiny-llava)', () => {
  it('batched scores = direct per-pair scores; the answer follows "ASSISTANT:" with a space', async () => {
    await initBackend();
    const vlm = await Vlm.load(fixture('tiny-llava'));
    try {
      const ranker = new GenerativeRanker(vlm);
      assert.equal(ranker.answerSeparator(), ' ');
      const img = fixture('tiny-llava', 'golden', 'inputs', 'small_40x52.png');
      const texts = ['a red car', 'a cat sleeping on the sofa'];
      const s = await ranker.score([img], texts);
      for (const [j, text] of texts.entries()) {
        const direct = await ranker.scorePairDirect(img, text);
        const logProb = s.logProb[0]![j]!;
        assert.ok(Math.abs(logProb - direct) <= 1e-4, `${logProb} vs ${direct}`);
      }
    } finally {
      vlm.dispose();
    }
  });
});
