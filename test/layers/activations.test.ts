import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initBackend } from '../../src/backend/index.ts';
import { activation } from '../../src/layers/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { installTrainingGradients } from '../../src/train/gradients.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { take } from './util.ts';

const xs = [-3, -1, -0.5, 0, 0.5, 1, 3];
const erf = (x: number) => {
  // Abramowitz–Stegun 7.1.28-free reference: series for |x| ≤ 3 converges fast in double.
  let sum = 0, term = x;
  for (let n = 0; n < 80; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
};
const REF: Record<string, (x: number) => number> = {
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  gelu_pytorch_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  gelu_new: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  quick_gelu: (x) => x / (1 + Math.exp(-1.702 * x)),
  silu: (x) => x / (1 + Math.exp(-x)),
  relu: (x) => Math.max(0, x),
};

describe('activations', () => {
  before(async () => { await initBackend(); });

  it('hand-checked values', () => {
    // gelu(1) = Φ(1) = 0.8413447; tanh form 0.8411920; quick_gelu(1) = σ(1.702) = 0.8457957; silu(1) = σ(1).
    assertClose(take(activation('gelu')(tf.scalar(1))), [0.8413447460685429], TOLERANCE.float32VsFloat64);
    assertClose(take(activation('gelu_pytorch_tanh')(tf.scalar(1))), [0.8411919906082768], TOLERANCE.float32VsFloat64);
    assertClose(take(activation('quick_gelu')(tf.scalar(1))), [0.8457957], TOLERANCE.float32VsFloat64);
    assertClose(take(activation('silu')(tf.scalar(1))), [0.7310585786300049], TOLERANCE.float32VsFloat64);
  });

  for (const [name, ref] of Object.entries(REF)) {
    it(`${name} matches its formula`, () => {
      assertClose(take(activation(name)(tf.tensor1d(xs))), xs.map(ref), TOLERANCE.float32VsFloat64, name);
    });
  }

  it('leave only their output, keep x, and differentiate (intermediates are freed as they go)', () => {
    for (const [name, ref] of Object.entries(REF)) {
      const x = tf.tensor1d(xs);
      const before = tf.memory().numTensors;
      const y = activation(name)(x);
      assert.equal(tf.memory().numTensors, before + 1, `${name}: tensors left besides the output`);
      assert.ok(!x.isDisposed, name);
      tf.dispose([x, y]);
      // d/dx by tf.grad against a central difference of the float64 formula.
      installTrainingGradients();
      const g = tf.grad((t: tf.Tensor) => activation(name)(t))(tf.tensor1d([0.7]));
      const h = 1e-4;
      assertClose(take(g), [(ref(0.7 + h) - ref(0.7 - h)) / (2 * h)], { abs: 1e-4, rel: 1e-4 }, `${name} gradient`);
    }
  });

  it('unknown names throw a TfvlmError naming the field', () => {
    assert.throws(() => activation('mish', 'vision_config.hidden_act'), (e: Error) =>
      e instanceof TfvlmError && /vision_config\.hidden_act/.test(e.message) && /mish/.test(e.message));
  });
});
