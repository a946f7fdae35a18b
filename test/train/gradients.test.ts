import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { initBackend, tf } from '../../src/backend/index.ts';
import { installTrainingGradients } from '../../src/train/gradients.ts';
import { AdamW, clipByGlobalNorm } from '../../src/train/optimizer.ts';
import { cosineWithWarmup } from '../../src/train/schedule.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';

before(async () => {
  await initBackend();
  installTrainingGradients();
});

describe('gradients on the active backend', () => {
  it('gather gradient sums the rows of repeated indices (embedding lookups, image merge)', () => {
    const x = tf.variable(tf.tensor2d([[1, 2], [3, 4], [5, 6]]));
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.gather(x, tf.tensor1d([2, 0, 2], 'int32')), tf.tensor2d([[1, 2], [3, 4], [5, 6]]))), [x]);
    const dx = grads[x.name];
    assert.ok(dx, 'a gradient for x');
    assertClose(dx.dataSync(), [3, 4, 0, 0, 6, 8], TOLERANCE.exact, 'd gather / dx');
    const y = tf.variable(tf.tensor3d([[[1, 2], [3, 4]], [[5, 6], [7, 8]]]));
    const g2 = tf.variableGrads(() => tf.sum(tf.gather(y, tf.tensor1d([1, 1, 0], 'int32'), 1)), [y]).grads[y.name];
    assert.ok(g2, 'a gradient for y');
    assertClose(g2.dataSync(), [1, 1, 2, 2, 1, 1, 2, 2], TOLERANCE.exact, 'gather on axis 1');
    tf.dispose([x, y, g2, ...Object.values(grads)]);
  });

  it('slice, unstack, split and transposed matMul give the same values as the reference math', () => {
    const a = tf.tensor3d(Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i), [2, 3, 4]);
    assert.deepEqual(Array.from(tf.slice(a, [1, 1, 1], [1, 2, 2]).dataSync()), [17, 18, 21, 22]);
    assert.deepEqual(Array.from(tf.unstack(a, 1)[2]!.dataSync()), [8, 9, 10, 11, 20, 21, 22, 23]);
    assert.deepEqual(Array.from(tf.split(a, [1, 3], 2)[1]!.dataSync()), [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19, 21, 22, 23]);
    const m = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    assertClose(tf.matMul(m, m, true, false).dataSync(), [17, 22, 27, 22, 29, 36, 27, 36, 45], TOLERANCE.exact, 'aᵀ·a');
    assertClose(tf.matMul(m, m, false, true).dataSync(), [14, 32, 32, 77], TOLERANCE.exact, 'a·aᵀ');
  });
});

describe('optimizer', () => {
  it('AdamW matches torch.optim.AdamW step by step', () => {
    const v = tf.variable(tf.tensor1d([1, -2]));
    const opt = new AdamW([{ name: 'w', variable: v, decay: true }], { weightDecay: 0.1 });
    // Reference: torch AdamW(lr=0.1, weight_decay=0.1) on w with gradient g = [0.5, -1] then [1, 1].
    let w = [1, -2];
    const m = [0, 0];
    const s2 = [0, 0];
    [[0.5, -1], [1, 1]].forEach((g, k) => {
      const gt = tf.tensor1d(g);
      opt.apply({ w: gt }, 0.1);
      gt.dispose();
      const t = k + 1;
      w = w.map((x, i) => {
        const d = x * (1 - 0.1 * 0.1);
        m[i] = 0.9 * m[i]! + 0.1 * g[i]!;
        s2[i] = 0.999 * s2[i]! + 0.001 * g[i]! * g[i]!;
        return d - (0.1 / (1 - 0.9 ** t)) * m[i] / (Math.sqrt(s2[i]) / Math.sqrt(1 - 0.999 ** t) + 1e-8);
      });
      assertClose(v.dataSync(), w, TOLERANCE.float32VsFloat64, `step ${t}`);
    });
    opt.dispose();
    v.dispose();
  });

  it('clips by the global norm and follows warm-up then cosine', () => {
    const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor1d([0, 4]) };
    assert.equal(clipByGlobalNorm(grads, 1), 5);
    assertClose([...grads.a.dataSync(), ...grads.b.dataSync()], [0.6, 0, 0, 0.8], TOLERANCE.float32VsFloat64, 'clipped');
    tf.dispose(Object.values(grads));
    assert.equal(cosineWithWarmup(0, 1, 10, 110), 0);
    assert.equal(cosineWithWarmup(5, 1, 10, 110), 0.5);
    assert.equal(cosineWithWarmup(10, 1, 10, 110), 1);
    assertClose([cosineWithWarmup(60, 1, 10, 110), cosineWithWarmup(110, 1, 10, 110)], [0.5, 0], TOLERANCE.float64, 'cosine');
  });
});
