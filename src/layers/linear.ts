// Linear layer y = x·Wᵀ + b (torch.nn.Linear). Checkpoints store W as [out, in]; it is transposed
// once here at load to [in, out] so every call is a plain matMul (the wasm backend's fast path).
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { fusedKernelsActive, linearFused } from '../backend/fused-kernels.ts';

export interface Linear {
  /** [in, out]: the checkpoint's [out, in] weight, transposed once at load. */
  weightT: tf.Tensor2D;
  /** [out], or undefined for bias=False. */
  bias?: tf.Tensor1D;
  inFeatures: number;
  outFeatures: number;
}

/** Builds a Linear from checkpoint tensors (weight [out, in]); takes ownership of (disposes) `weight`. */
export function linearFromCheckpoint(weight: tf.Tensor, bias?: tf.Tensor): Linear {
  if (weight.rank !== 2) throw new TfvlmError(`linear weight must be [out, in], got shape [${weight.shape}]`);
  const [outFeatures, inFeatures] = weight.shape as [number, number];
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outFeatures)) {
    throw new TfvlmError(`linear bias must be [${outFeatures}], got shape [${bias.shape}]`);
  }
  const weightT = tf.keep(tf.transpose(weight) as tf.Tensor2D);
  weight.dispose();
  return { weightT, bias: bias as tf.Tensor1D | undefined, inFeatures, outFeatures };
}

/** x [..., in] → [..., out]. */
export function linear(layer: Linear, x: tf.Tensor): tf.Tensor {
  const lastDim = x.shape[x.rank - 1];
  if (lastDim !== layer.inFeatures) {
    throw new TfvlmError(`linear expects input [..., ${layer.inFeatures}], got [${x.shape}]`);
  }
  if (fusedKernelsActive() && x.dtype === 'float32') return linearFused(x, layer.weightT, layer.bias);
  return tf.tidy(() => {
    const rows = x.size / lastDim;
    const x2d = tf.reshape(x, [rows, lastDim]); // [N, in]
    const y = tf.fused.matMul({ a: x2d, b: layer.weightT, bias: layer.bias });
    return tf.reshape(y, [...x.shape.slice(0, -1), layer.outFeatures]);
  });
}

export function disposeLinear(layer: Linear): void {
  layer.weightT.dispose();
  layer.bias?.dispose();
}
