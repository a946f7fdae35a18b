// Activations by their Hugging Face names (transformers activations.py: ACT2FN).
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';

export type Activation = (x: tf.Tensor) => tf.Tensor;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** GELU with the exact erf form (torch.nn.functional.gelu, approximate='none'). */
export const gelu: Activation = (x) =>
  tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));

/**
 * GELU tanh approximation (gelu_pytorch_tanh, gelu_new): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))),
 * evaluated as x·sigmoid(x·(2√(2/π) + 2√(2/π)·0.044715·x²)) since 0.5·(1 + tanh z) = sigmoid(2z):
 * fewer scalar-broadcast ops, which are slow on the wasm backend.
 */
export const geluTanh: Activation = (x) =>
  tf.tidy(() => {
    const c1 = 2 * SQRT_2_OVER_PI;
    const inner = tf.mul(x, tf.add(tf.mul(tf.square(x), c1 * 0.044715), c1));
    return tf.mul(x, tf.sigmoid(inner));
  });

/** x · sigmoid(1.702 · x) (CLIP). */
export const quickGelu: Activation = (x) => tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702))));

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
