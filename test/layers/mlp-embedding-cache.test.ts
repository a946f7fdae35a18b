import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initBackend } from '../../src/backend/index.ts';
import {
  activation, cachedKeysValues, ConcatKVCache, disposeLinear, embed, gatedMlp, linearFromCheckpoint, mlp,
} from '../../src/layers/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { take } from './util.ts';

describe('MLPs, embedding, KV cache', () => {
  before(async () => { await initBackend(); });

  it('gated MLP: down(silu(gate x) · up x), hand-checked', () => {
    // x = [1, 2]; gate = [[1, 0]] → 1; up = [[0, 1]] → 2; silu(1) = 0.7310586; down = [[3]] → 3 · 0.7310586 · 2.
    const m = {
      gate: linearFromCheckpoint(tf.tensor2d([[1, 0]])),
      up: linearFromCheckpoint(tf.tensor2d([[0, 1]])),
      down: linearFromCheckpoint(tf.tensor2d([[3]])),
      act: activation('silu'),
    };
    assertClose(take(gatedMlp(m, tf.tensor2d([[1, 2]]))), [3 * 0.7310585786300049 * 2], TOLERANCE.float32);
    [m.gate, m.up, m.down].forEach(disposeLinear);
  });

  it('plain MLP: fc2(act(fc1 x)), hand-checked with relu and biases', () => {
    const m = {
      fc1: linearFromCheckpoint(tf.tensor2d([[1, -1], [2, 1]]), tf.tensor1d([0, -10])),
      fc2: linearFromCheckpoint(tf.tensor2d([[1, 1]]), tf.tensor1d([0.5])),
      act: activation('relu'),
    };
    // x = [3, 1]: fc1 → [2, -3] → relu [2, 0] → fc2 2.5
    assertClose(take(mlp(m, tf.tensor2d([[3, 1]]))), [2.5], TOLERANCE.exact);
    [m.fc1, m.fc2].forEach(disposeLinear);
  });

  it('embedding gathers rows and rejects ids outside the vocabulary', () => {
    const w = tf.tensor2d([[0, 0], [1, 2], [3, 4]]);
    const table = { table: w, numEmbeddings: 3, embeddingDim: 2 };
    const y = embed(table, tf.tensor2d([[2, 1], [0, 2]], [2, 2], 'int32'));
    assert.deepEqual(y.shape, [2, 2, 2]);
    assertClose(take(y), [3, 4, 1, 2, 0, 0, 3, 4], TOLERANCE.exact);
    assert.throws(() => embed(table, tf.tensor2d([[3]], [1, 1], 'int32')), TfvlmError);
    w.dispose();
  });

  it('KV cache: offset grows, returns everything stored, frees on dispose', () => {
    const before = tf.memory().numTensors;
    const cache = new ConcatKVCache();
    assert.equal(cache.offset, 0);
    const k1 = tf.ones([1, 2, 3, 4]), v1 = tf.zeros([1, 2, 3, 4]);
    tf.tidy(() => { cache.update(k1, v1); }); // stored tensors survive the tidy
    const k2 = tf.fill([1, 2, 1, 4], 2), v2 = tf.fill([1, 2, 1, 4], 5);
    cache.update(k2, v2);
    const { k, v } = cachedKeysValues(cache.view());
    assert.equal(cache.offset, 4);
    assert.deepEqual(k.shape, [1, 2, 4, 4]);
    const kv = k.dataSync();
    assert.equal(kv[0], 1);
    assert.equal(kv[3 * 4], 2); // head 0, position 3
    assert.equal(v.dataSync()[3 * 4], 5);
    const wrong = tf.ones([1, 3, 1, 4]);
    assert.throws(() => cache.update(wrong, wrong), TfvlmError);
    [k1, v1, k2, v2, wrong, k, v].forEach((t) => t.dispose());
    cache.dispose();
    assert.equal(cache.offset, 0);
    assert.equal(tf.memory().numTensors, before);
  });
});
