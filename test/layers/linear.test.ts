import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initBackend } from '../../src/backend/index.ts';
import { linear, linearFromCheckpoint, disposeLinear } from '../../src/layers/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { take } from './util.ts';

describe('linear', () => {
  before(async () => { await initBackend(); });

  it('computes x·Wᵀ + b with W stored [out, in]', () => {
    // W [3, 2], b [3], x [2, 2]; hand-computed.
    const l = linearFromCheckpoint(tf.tensor2d([[1, 2], [3, 4], [5, 6]]), tf.tensor1d([0.5, -1, 2]));
    const y = linear(l, tf.tensor3d([[[1, 1], [2, -1]]]));
    assert.deepEqual(y.shape, [1, 2, 3]);
    assertClose(take(y), [3.5, 6, 13, 0.5, 1, 6], TOLERANCE.exact);
    disposeLinear(l);
  });

  it('works without bias and on any leading shape', () => {
    const l = linearFromCheckpoint(tf.tensor2d([[2, 0], [0, 3]]));
    const y = linear(l, tf.ones([2, 3, 1, 2]));
    assert.deepEqual(y.shape, [2, 3, 1, 2]);
    assertClose(take(y), Array(12).fill(0).map((_, i) => (i % 2 ? 3 : 2)), TOLERANCE.exact);
    disposeLinear(l);
  });

  it('rejects a wrong input width with a TfvlmError', () => {
    const l = linearFromCheckpoint(tf.ones([4, 3]));
    assert.throws(() => linear(l, tf.ones([2, 5])), TfvlmError);
    disposeLinear(l);
  });
});
