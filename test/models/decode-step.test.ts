// The one-token decode step on packed weights (src/models/llama/decode-step.ts) against the tfjs
// layers it stands beside (withoutDecodeStep): the same logits within float32 tolerance (only the
// attention's dot products sum in another order), the same greedy tokens, every cache position
// written alike, nothing leaked; and it stays out of the way where it does not apply.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../src/backend/index.ts';
import { withoutFusedKernels } from '../../src/backend/fused-kernels.ts';
import { mutableView } from '../../src/backend/tensor-memory.ts';
import { PreallocatedKVCache } from '../../src/layers/preallocated-kv-cache.ts';
import { Capture } from '../../src/models/capture.ts';
import { loadModel, type LoadedModel } from '../../src/models/index.ts';
import { LlamaDecodeStep, withoutDecodeStep } from '../../src/models/llama/decode-step.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';
import { PACKED_DECODER_CASES } from '../helpers/packed-decoders.ts';

/** Counts LlamaDecodeStep.run calls while fn runs. */
async function stepsTaken(fn: () => Promise<void> | void): Promise<number> {
  const run = LlamaDecodeStep.prototype.run;
  let calls = 0;
  LlamaDecodeStep.prototype.run = function (this: LlamaDecodeStep, ...args: Parameters<typeof run>) {
    calls++;
    return run.apply(this, args);
  };
  try {
    await fn();
  } finally {
    LlamaDecodeStep.prototype.run = run;
  }
  return calls;
}

/** Caches that grow every 3 positions, so appends cross growth in the middle of a step. */
function smallChunkCaches(model: LoadedModel): PreallocatedKVCache[] {
  return model.createCache().map((c) => {
    c.dispose();
    return new PreallocatedKVCache({ chunk: 3 });
  });
}

function lastLogits(model: LoadedModel, ids: number[], cache: PreallocatedKVCache[]): Float32Array {
  const input = tf.tensor2d([ids], [1, ids.length], 'int32');
  const { logits } = model.forward({ input_ids: input }, { cache, lastOnly: true });
  const values = Float32Array.from(logits.dataSync() as Float32Array);
  tf.dispose([input, logits]);
  return values;
}

const argmax = (v: Float32Array<ArrayBufferLike>) => v.reduce((best, x, i) => (x > v[best]! ? i : best), 0);

describe('LlamaDecodeStep', () => {
  before(async () => {
    await initBackend();
  });

  for (const [name, options] of PACKED_DECODER_CASES) {
    it(`${name} ${options.dtype ?? 'stored'}: 12 decode steps give the tfjs layers' logits and tokens, caches alike, nothing leaked`, async () => {
      const model = await loadModel(fixture(name), options);
      const before = tf.memory().numTensors;
      const fast = smallChunkCaches(model);
      const slow = smallChunkCaches(model);
      try {
        // A one-token prompt on empty caches (the step starts them), then a longer one, then steps.
        let token = 1;
        let steps = 0;
        const prompts = [[token], [5, 9, 22, 7]];
        for (const prompt of prompts) {
          const reference = withoutDecodeStep(() => lastLogits(model, prompt, slow));
          steps += await stepsTaken(() => {
            assertClose(lastLogits(model, prompt, fast), reference, TOLERANCE.float32, `${name} prompt [${prompt}]`);
          });
        }
        assert.equal(steps, 1, 'the one-token prompt took the step, the four-token one the layers');
        for (let i = 0; i < 12; i++) {
          let got: Float32Array<ArrayBufferLike> = new Float32Array(0);
          const want = withoutDecodeStep(() => lastLogits(model, [token], slow));
          steps += await stepsTaken(() => {
            got = lastLogits(model, [token], fast);
          });
          assertClose(got, want, TOLERANCE.float32, `${name} step ${i}`);
          assert.equal(argmax(got), argmax(want), `${name} step ${i}: greedy token`);
          token = argmax(want);
        }
        assert.equal(steps, 13);
        assert.equal(fast.length, slow.length);
        for (const [l, f] of fast.entries()) {
          const [a, b] = [f.view(), slow[l]!.view()];
          assert.equal(a.length, b.length);
          assert.equal(a.capacity, b.capacity);
          assert.deepEqual([a.valuesT.length, b.keys.length, b.valuesT.length], [a.keys.length, a.keys.length, a.keys.length]);
          for (let j = 0; j < a.keys.length; j++) {
            assertClose(mutableView(a.keys[j]!)!, mutableView(b.keys[j]!)!, TOLERANCE.float32, `layer ${l} keys ${j}`);
            assertClose(mutableView(a.valuesT[j]!)!, mutableView(b.valuesT[j]!)!, TOLERANCE.float32, `layer ${l} values ${j}`);
          }
        }
      } finally {
        for (const c of [...fast, ...slow]) c.dispose();
      }
      assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
      model.dispose();
    });
  }

  it('is not taken for float32 weights, batch 2, with the fused kernels off, or with a capture', async () => {
    const stored = await loadModel(fixture('tiny-smolvlm'), {});
    const float32 = await loadModel(fixture('tiny-smolvlm'), { weights: 'float32' });
    try {
      const step = (model: LoadedModel, ids: number[][], capture = false) => {
        const cache = model.createCache();
        const [first] = ids;
        assert.ok(first, 'a batch of at least one row');
        const input = tf.tensor2d(ids, [ids.length, first.length], 'int32');
        const recorder = capture ? new Capture(['logits']) : undefined;
        const { logits } = model.forward({ input_ids: input }, { cache, capture: recorder });
        tf.dispose([input, logits]);
        recorder?.dispose();
        for (const c of cache) c.dispose();
      };
      assert.equal(await stepsTaken(() => step(stored, [[3]])), 1, 'control: stored weights, batch 1');
      assert.equal(await stepsTaken(() => step(float32, [[3]])), 0, 'float32 weights');
      assert.equal(await stepsTaken(() => step(stored, [[3], [4]])), 0, 'batch 2');
      assert.equal(await stepsTaken(() => withoutFusedKernels(() => step(stored, [[3]]))), 0, 'fused kernels off');
      assert.equal(await stepsTaken(() => step(stored, [[3]], true)), 0, 'capture');
    } finally {
      stored.dispose();
      float32.dispose();
    }
  });
});
