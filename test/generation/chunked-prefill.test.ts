// A prompt longer than PREFILL_CHUNK runs through the decoder in passes over the growing cache; the
// next-token logits must be those of one pass over the whole prompt (the same attention, rows in
// another grouping: float32 summation noise at most), for a batch with left padding too, and the
// prefill progress must run once over all passes.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../src/backend/index.ts';
import { generateTokens, PREFILL_CHUNK, prefillPositions } from '../../src/generation/generate.ts';
import { GREEDY } from '../../src/generation/sampler.ts';
import type { GenerativeModel } from '../../src/models/decoder-model.ts';
import { Idefics3Model } from '../../src/models/index.ts';
import type { ProgressEvent } from '../../src/util/progress.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';

describe('chunked prefill', () => {
  before(() => initBackend());

  it(`a ${2 * PREFILL_CHUNK + 37}-token batch of 2 (one left-padded) gives the one-pass logits`, async () => {
    const before = tf.memory().numTensors;
    const model = await Idefics3Model.load(fixture('tiny-smolvlm'));
    try {
      const T = 2 * PREFILL_CHUNK + 37;
      const ids = [Array.from({ length: T }, (_, i) => 3 + ((i * 7919) % 400)), Array.from({ length: T }, (_, i) => (i < 5 ? 0 : 3 + ((i * 104729) % 400)))];
      const mask = [new Array(T).fill(1), Array.from({ length: T }, (_, i) => (i < 5 ? 0 : 1))];
      const onePass = tf.tidy(() => {
        const { logits } = model.forward({
          input_ids: tf.tensor2d(ids, [2, T], 'int32'), attention_mask: mask.flat(), position_ids: prefillPositions(mask),
        });
        return Float32Array.from(tf.slice(logits, [0, T - 1, 0], [2, 1, -1]).dataSync() as Float32Array);
      });
      // The loop's model, noting the logits of each decoder pass.
      const passes: Float32Array[] = [];
      const spy: GenerativeModel = {
        maxPositions: model.maxPositions,
        createCache: (capacity) => model.createCache(capacity),
        embed: (inputs) => model.embed(inputs),
        checkPromptFits: (p) => model.checkPromptFits(p),
        decodeRows: (embeds, caches) => model.decodeRows(embeds, caches),
        decodeLast: (embeds, m, positions, cache) => {
          const logits = model.decodeLast(embeds, m, positions, cache);
          passes.push(Float32Array.from(logits.dataSync() as Float32Array));
          return logits;
        },
      };
      const stages: ProgressEvent[] = [];
      const gen = generateTokens(spy, { input_ids: ids, attention_mask: mask }, {
        ...GREEDY, seed: 0, maxNewTokens: 1, eosTokenIds: [], onProgress: (e) => stages.push(e),
      });
      while (!(await gen.next()).done);
      assert.equal(passes.length, 3, 'three prefill passes');
      assertClose(passes[2]!, onePass, TOLERANCE.float32, 'last prefill pass vs one pass');
      const prefill = stages.filter((e) => e.stage === 'prefill');
      const layers = model.config.text_config.num_hidden_layers;
      assert.deepEqual(prefill.map((e) => e.done), Array.from({ length: 3 * layers }, (_, i) => i + 1));
      assert.ok(prefill.every((e) => e.total === 3 * layers));
    } finally {
      model.dispose();
    }
    assert.equal(tf.memory().numTensors, before);
  });
});
