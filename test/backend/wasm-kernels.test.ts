import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/backend/index.ts';
import { startWasmWithFastPaths } from '../helpers/wasm-backend.ts';

/** Reference slice computed on the host from the flat values. */
function hostSlice(values: number[], shape: number[], begin: number[], size: number[]): number[] {
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out: number[] = [];
  const idx = new Array(shape.length).fill(0);
  const total = size.reduce((a, b) => a * b, 1);
  for (let n = 0; n < total; n++) {
    out.push(values[idx.reduce((off, v, d) => off + (begin[d]! + v) * strides[d]!, 0)]!);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < size[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

describe('wasm heap-view kernels (Slice, Unpack, SplitV)', () => {
  before(async () => {
    await startWasmWithFastPaths();
  });

  it('slices whole trailing dims, partial inner dims and scalars like the host reference', () => {
    const shape = [3, 4, 5, 6];
    const values = Array.from({ length: 360 }, (_, i) => i);
    const x = tf.tensor(values, shape);
    const cases: [number[], number[]][] = [
      [[1, 0, 0, 0], [2, 4, 5, 6]], [[0, 1, 0, 0], [3, 2, 5, 6]], [[0, 0, 2, 0], [3, 4, 2, 6]],
      [[1, 2, 3, 4], [1, 1, 2, 2]], [[0, 0, 0, 5], [3, 4, 5, 1]], [[2, 3, 4, 5], [1, 1, 1, 1]],
    ];
    for (const [begin, size] of cases) {
      const s = tf.slice(x, begin, size);
      assert.deepEqual(Array.from(s.dataSync()), hostSlice(values, shape, begin, size), `slice ${begin} ${size}`);
      s.dispose();
    }
    const i = tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], 'int32');
    assert.deepEqual(Array.from(tf.slice(i, [0, 1], [2, 2]).dataSync()), [2, 3, 5, 6]);
    tf.dispose([x, i]);
  });

  it('unstacks and splits along every axis', () => {
    const x = tf.tensor3d(Float32Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
    const [, unstacked1] = tf.unstack(x, 0);
    assert.ok(unstacked1, 'unstack along axis 0 gives 2 slices');
    assert.deepEqual(Array.from(unstacked1.dataSync()), Array.from({ length: 12 }, (_, i) => 12 + i));
    const [, , , unstacked3] = tf.unstack(x, 2);
    assert.ok(unstacked3, 'unstack along axis 2 gives 4 slices');
    assert.deepEqual(Array.from(unstacked3.dataSync()), [3, 7, 11, 15, 19, 23]);
    const [, part1] = tf.split(x, [1, 2], 1);
    assert.ok(part1, 'split into [1, 2] gives 2 parts');
    assert.deepEqual(part1.shape, [2, 2, 4]);
    assert.deepEqual(Array.from(part1.dataSync()), [4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23]);
    const before = tf.memory().numTensors;
    tf.dispose(tf.unstack(x, 1));
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
  });
});
