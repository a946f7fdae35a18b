// The decoder pieces the generation loop builds on (prefill + cached decode with per-row
// attention_mask and position_ids) reproduce transformers' batched greedy steps
// (tiny-smolvlm batch_two_conversations: generate.logits with right padding,
// generate_left_padding.logits with left padding). Position ids as generate() builds them:
// cumsum(attention_mask) − 1, 1 at padding; new tokens continue from each row's real length.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tf, initBackend } from '../../src/backend/index.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { loadModel, type Idefics3Model } from '../../src/models/index.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';

const GOLDEN = fixture('tiny-smolvlm', 'golden');
const batchCase = (JSON.parse(fs.readFileSync(`${GOLDEN}/cases.json`, 'utf8')).cases as any[])
  .find((c) => c.name === 'batch_two_conversations');

function generatePositions(mask: number[][]): number[][] {
  return mask.map((row) => {
    let sum = 0;
    return row.map((m) => (sum += m, m ? sum - 1 : 1));
  });
}

describe('Idefics3 batched prefill + cached decode vs transformers generate()', () => {
  let model: Idefics3Model;
  let pixelValues: tf.Tensor;
  let pixelMask: tf.Tensor;
  let golden: SafetensorsFile;
  before(async () => {
    await initBackend();
    model = (await loadModel(fixture('tiny-smolvlm'))) as Idefics3Model;
    const inputs = SafetensorsFile.open(`${GOLDEN}/batch_two_conversations.inputs.safetensors`);
    pixelValues = inputs.readTensor('pixel_values');
    pixelMask = inputs.readTensor('pixel_attention_mask');
    inputs.close();
    golden = SafetensorsFile.open(`${GOLDEN}/batch_two_conversations.safetensors`);
  });
  after(() => {
    model?.dispose();
    pixelValues?.dispose();
    pixelMask?.dispose();
    golden?.close();
  });

  for (const [label, ids, mask, newTokens, key] of [
    ['right padding', batchCase.input_ids, batchCase.attention_mask, batchCase.generate.new_token_ids, 'generate.logits'],
    ['left padding', batchCase.generate_left_padding.input_ids, batchCase.generate_left_padding.attention_mask,
      batchCase.generate_left_padding.new_token_ids, 'generate_left_padding.logits'],
  ] as [string, number[][], number[][], number[][], string][]) {
    it(`${label}: every step's logits match`, () => {
      const B = ids.length;
      const [ids0] = ids, [newTokens0] = newTokens;
      assert.ok(ids0 && newTokens0, `${label}: the golden case has no rows`);
      const T = ids0.length;
      const steps = newTokens0.length;
      assert.ok(newTokens.every((r) => r.length === steps), `${label}: new_token_ids rows of different lengths`);
      const expected = golden.readArray(key) as Float32Array; // [B, steps, V]
      const V = model.config.text_config.vocab_size;
      const before = tf.memory().numTensors;
      const cache = model.createCache();
      let fullMask = mask.map((r) => r.slice());
      let positions = generatePositions(fullMask);
      const inputIds = tf.tensor2d(ids.flat(), [B, T], 'int32');
      let { logits } = model.forward({
        input_ids: inputIds, attention_mask: fullMask.flat(), position_ids: positions.flat(),
        pixel_values: pixelValues, pixel_attention_mask: pixelMask,
      }, { cache, lastOnly: true });
      inputIds.dispose();
      for (let k = 0; k < steps; k++) {
        assert.deepEqual(logits.shape, [B, 1, V]);
        const got = logits.dataSync() as Float32Array;
        for (let b = 0; b < B; b++) {
          const ref = expected.subarray((b * steps + k) * V, (b * steps + k + 1) * V);
          assertClose(got.subarray(b * V, (b + 1) * V), ref, TOLERANCE.float32, `${label} row ${b} step ${k}`);
        }
        logits.dispose();
        if (k === steps - 1) break;
        fullMask = fullMask.map((r) => [...r, 1]);
        positions = generatePositions(fullMask);
        const step = tf.tensor2d(newTokens.map((r) => r[k]!), [B, 1], 'int32');
        ({ logits } = model.forward({
          input_ids: step, attention_mask: fullMask.flat(), position_ids: positions.map((r) => r[r.length - 1]!),
        }, { cache, lastOnly: true }));
        step.dispose();
      }
      cache.forEach((c) => c.dispose());
      assert.equal(tf.memory().numTensors, before);
    });
  }
});
