// Activations by their Hugging Face names (transformers activations.py: ACT2FN).
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';

export type Activation = (x: tf.Tensor) => tf.Tensor;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** GELU with the exact erf form (torch.nn.functional.gelu, approximate='none'). */
export const gelu: Activation = (x) =>
  tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));

/**
 * fn(t) in its own tidy (freeing the scalars it makes), then t freed: each intermediate of an
 * activation lives only until the next exists. One tidy around the whole activation would hold them
 * all to its end: at a vision MLP's [1024, 3072] that is ~50 MB more peak heap, which the wasm heap
 * then keeps. Safe under a gradient tape, which keeps its own copies of what backprop needs.
 */
function then(t: tf.Tensor, fn: (t: tf.Tensor) => tf.Tensor): tf.Tensor {
  const out = tf.tidy(() => fn(t));
  t.dispose();
  return out;
}

/**
 * GELU tanh approximation (gelu_pytorch_tanh, gelu_new): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))),
 * evaluated as x·sigmoid(x·(2√(2/π) + 2√(2/π)·0.044715·x²)) since 0.5·(1 + tanh z) = sigmoid(2z):
 * fewer scalar-broadcast ops, which are slow on the wasm backend.
 */
export const geluTanh: Activation = (x) => {
  const c1 = 2 * SQRT_2_OVER_PI;
  let t = tf.square(x);
  t = then(t, (sq) => tf.mul(sq, c1 * 0.044715));
  t = then(t, (a) => tf.add(a, c1));
  t = then(t, (b) => tf.mul(x, b));
  t = then(t, (inner) => tf.sigmoid(inner));
  return then(t, (sig) => tf.mul(x, sig));
};

/** x · sigmoid(1.702 · x) (CLIP). */
export const quickGelu: Activation = (x) => {
  let t = tf.tidy(() => tf.mul(x, 1.702));
  t = then(t, (a) => tf.sigmoid(a));
  return then(t, (sig) => tf.mul(x, sig));
};

export const silu: Activation = (x) => tf.tidy(() => tf.mul(x, tf.sigmoid(x)));

export const relu: Activation = (x) => tf.relu(x);

const BY_NAME: Record<string, Activation> = {
  gelu,
  gelu_pytorch_tanh: geluTanh,
  gelu_new: geluTanh,
  quick_gelu: quickGelu,
  silu,
  swish: silu,
  relu,
};

/** The activation an HF config names (`hidden_act`); unknown names throw, naming the field. */
export function activation(name: string, field = 'hidden_act'): Activation {
  const fn = Object.prototype.hasOwnProperty.call(BY_NAME, name) ? BY_NAME[name] : undefined;
  if (!fn) {
    throw new TfvlmError(`${field}: activation '${name}' is not supported (supported: ${Object.keys(BY_NAME).join(', ')})`);
  }
  return fn;
}
