// torch.nn.LayerNorm over the last axis: (x − mean) / sqrt(var + eps) · weight + bias (biased variance).
import { tf } from '../backend/index.ts';
import { fusesElementwise, layerNormFused } from '../backend/fused-kernels.ts';

export interface LayerNorm {
  weight: tf.Tensor1D;
  bias: tf.Tensor1D;
  eps: number;
}

export function layerNorm(ln: LayerNorm, x: tf.Tensor): tf.Tensor {
  if (fusesElementwise(x)) return layerNormFused(x, ln.weight, ln.bias, ln.eps);
  return tf.tidy(() => {
    const axis = x.rank - 1;
    const mean = tf.mean(x, axis, true);
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), axis, true);
    const normed = tf.mul(centered, tf.rsqrt(tf.add(variance, ln.eps)));
    return tf.add(tf.mul(normed, ln.weight), ln.bias);
  });
}

export function disposeLayerNorm(ln: LayerNorm): void {
  ln.weight.dispose();
  ln.bias.dispose();
}
