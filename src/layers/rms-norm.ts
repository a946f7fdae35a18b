// Llama RMSNorm (transformers modeling_llama.py: LlamaRMSNorm), computed in float32:
// weight · x / sqrt(mean(x²) + eps).
import { tf } from '../backend/index.ts';
import { FUSED_ELEMENTWISE_MAX, fusedKernelsActive, rmsNormFused } from '../backend/fused-kernels.ts';

export interface RMSNorm {
  weight: tf.Tensor1D;
  eps: number;
}

export function rmsNorm(norm: RMSNorm, x: tf.Tensor): tf.Tensor {
  if (fusedKernelsActive() && x.dtype === 'float32' && x.size <= FUSED_ELEMENTWISE_MAX) return rmsNormFused(x, norm.weight, norm.eps);
  return tf.tidy(() => {
    const variance = tf.mean(tf.square(x), x.rank - 1, true);
    return tf.mul(norm.weight, tf.mul(x, tf.rsqrt(tf.add(variance, norm.eps))));
  });
}

export function disposeRMSNorm(norm: RMSNorm): void {
  norm.weight.dispose();
}
