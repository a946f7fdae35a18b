// Linear layer y = x·Wᵀ + b (torch.nn.Linear). A Linear holds its weight one of two ways:
// - weightT: a float32 tfjs tensor [in, out] (the checkpoint's [out, in] transposed once at load, so
//   every call is a plain matMul): the reference path, and the one training differentiates;
// - packed: the checkpoint's [out, in] in its stored precision in a kernel arena (weight-store.ts),
//   run by tfvlm's wasm kernels: inference, any model size. Tested equal to the reference.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { fusedKernelsActive, linearFused } from '../backend/fused-kernels.ts';
import { packedMatmul } from './packed-matmul.ts';
import { packedLinearKernelActive, packedLinearOnHeap } from './packed-linear-kernel.ts';
import type { PackedMatrix } from './weight-store.ts';

export interface Linear {
  /** [in, out] float32: the checkpoint's [out, in] weight, transposed once at load (reference path). */
  weightT?: tf.Tensor2D;
  /** [out, in] in the checkpoint's precision, with the bias beside it (kernel path). */
  packed?: PackedMatrix;
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

/** The [in, out] float32 weight of a reference-path Linear; a named error for a packed one. */
export function weightTOf(layer: Linear, what = 'this operation'): tf.Tensor2D {
  if (!layer.weightT) {
    throw new TfvlmError(`${what} needs float32 weights in tfjs tensors; load the model with weights 'float32'`);
  }
  return layer.weightT;
}

/** x [..., in] → [..., out]. */
export function linear(layer: Linear, x: tf.Tensor): tf.Tensor {
  const lastDim = x.shape[x.rank - 1];
  if (lastDim !== layer.inFeatures) {
    throw new TfvlmError(`linear expects input [..., ${layer.inFeatures}], got [${x.shape}]`);
  }
  const outShape = [...x.shape.slice(0, -1), layer.outFeatures];
  if (layer.packed) {
    if (x.dtype !== 'float32') throw new TfvlmError(`linear expects float32 input, got ${x.dtype}`);
    if (packedLinearKernelActive()) return packedLinearOnHeap(layer.packed, x);
    const y = packedMatmul(layer.packed, x.dataSync() as Float32Array, x.size / lastDim);
    return tf.tensor(y, outShape, 'float32');
  }
  const weightT = weightTOf(layer);
  if (fusedKernelsActive() && x.dtype === 'float32') return linearFused(x, weightT, layer.bias);
  return tf.tidy(() => {
    const rows = x.size / lastDim;
    const x2d = tf.reshape(x, [rows, lastDim]); // [N, in]
    const y = tf.fused.matMul({ a: x2d, b: weightT, bias: layer.bias });
    return tf.reshape(y, outShape);
  });
}

/** Frees the tfjs tensors of a Linear (a packed weight is freed with its store). */
export function disposeLinear(layer: Linear): void {
  layer.weightT?.dispose();
  layer.bias?.dispose();
}
