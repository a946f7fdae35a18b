import { describe, it, before } from 'node:test';
import { tf, initBackend } from '../../src/backend/index.ts';
import { layerNorm, rmsNorm } from '../../src/layers/index.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { randomArray, take } from './util.ts';

describe('norms', () => {
  before(async () => { await initBackend(); });

  it('LayerNorm matches a naive per-row reference', () => {
    const rows = 5, dim = 7, eps = 1e-6;
    const x = randomArray(rows * dim, 1, 3);
    const w = randomArray(dim, 2), b = randomArray(dim, 3);
    const expected: number[] = [];
    for (let r = 0; r < rows; r++) {
      const row = Array.from(x.subarray(r * dim, (r + 1) * dim));
      const mean = row.reduce((a, c) => a + c, 0) / dim;
      const variance = row.reduce((a, c) => a + (c - mean) ** 2, 0) / dim;
      row.forEach((v, i) => expected.push(((v - mean) / Math.sqrt(variance + eps)) * w[i]! + b[i]!));
    }
    const y = layerNorm({ weight: tf.tensor1d(w), bias: tf.tensor1d(b), eps }, tf.tensor2d(x, [rows, dim]));
    assertClose(take(y), expected, TOLERANCE.float32);
  });

  it('RMSNorm is weight · x / sqrt(mean(x²) + eps)', () => {
    // Hand-checked: x = [3, 4], mean(x²) = 12.5, eps = 0 → x / 3.5355339 · w.
    const y = rmsNorm({ weight: tf.tensor1d([1, 2]), eps: 0 }, tf.tensor2d([[3, 4]]));
    assertClose(take(y), [3 / Math.sqrt(12.5), (2 * 4) / Math.sqrt(12.5)], TOLERANCE.float32);
    const rows = 4, dim = 6, eps = 1e-5;
    const x = randomArray(rows * dim, 4, 2), w = randomArray(dim, 5);
    const expected: number[] = [];
    for (let r = 0; r < rows; r++) {
      const row = Array.from(x.subarray(r * dim, (r + 1) * dim));
      const ms = row.reduce((a, c) => a + c * c, 0) / dim;
      row.forEach((v, i) => expected.push((w[i]! * v) / Math.sqrt(ms + eps)));
    }
    const y2 = rmsNorm({ weight: tf.tensor1d(w), eps }, tf.tensor2d(x, [rows, dim]));
    assertClose(take(y2), expected, TOLERANCE.float32);
  });
});
