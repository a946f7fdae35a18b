// Llama RMSNorm (transformers modeling_llama.py: LlamaRMSNorm), computed in float32:
// weight · x / sqrt(mean(x²) + eps).
import { tf } from '../backend/index.ts';
import { addRmsNormFused, fusesElementwise, rmsNormFused } from '../backend/fused-kernels.ts';

export interface RMSNorm {
  weight: tf.Tensor1D;
  eps: number;
}

export function rmsNorm(norm: RMSNorm, x: tf.Tensor): tf.Tensor {
  if (fusesElementwise(x)) return rmsNormFused(x, norm.weight, norm.eps);
  return tf.tidy(() => {
    const variance = tf.mean(tf.square(x), x.rank - 1, true);
    return tf.mul(norm.weight, tf.mul(x, tf.rsqrt(tf.add(variance, norm.eps))));
  });
}

/** The residual sum x + delta and its RMSNorm, as one kernel where the fused kernels run. */
export function addRmsNorm(norm: RMSNorm, x: tf.Tensor, delta: tf.Tensor): { sum: tf.Tensor; normed: tf.Tensor } {
  if (fusesElementwise(x) && delta.shape.every((d, i) => d === x.shape[i])) {
    const [sum, normed] = addRmsNormFused(x, delta, norm.weight, norm.eps);
    return { sum, normed };
  }
  const sum = tf.add(x, delta);
  return { sum, normed: rmsNorm(norm, sum) };
}

export function disposeRMSNorm(norm: RMSNorm): void {
  norm.weight.dispose();
}
