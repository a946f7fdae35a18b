// Gradients that some backends cannot run with tfjs-core's own definitions. tfjs-core
// gradients/GatherV2_grad.ts builds dx with unsortedSegmentSum, a kernel the wasm backend lacks;
// here dx comes from scatterND (which sums rows of repeated indices) — the same values.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { tf } from '../backend/index.ts';
import { installWasmHeapKernels } from '../backend/wasm-kernels.ts';

let installedFor: string | undefined;

/**
 * tfjs-core's register_all_gradients: in the built package, the CommonJS bundle scripts/build.mjs
 * makes of it (dist/train/tfjs-gradients.cjs); in the source checkout the ES module itself, which
 * tsx's require hook loads.
 */
function registerAllGradients(): string {
  const bundled = fileURLToPath(new URL('./tfjs-gradients.cjs', import.meta.url));
  return existsSync(bundled) ? bundled : '@tensorflow/tfjs-core/dist/register_all_gradients.js';
}

/** Kernels the backend must have for every gradient the models use (checked by tests). */
export const TRAINING_KERNELS = [
  'ScatterNd', '_FusedMatMul', 'BatchMatMul', 'Transpose', 'Reshape', 'Softmax', 'Sum', 'Max', 'Exp', 'Log',
  'Multiply', 'Add', 'Sub', 'RealDiv', 'Sigmoid', 'Rsqrt', 'Pack', 'Unpack', 'Concat', 'Slice', 'Erf', 'Square',
  'Sqrt', 'Neg', 'Tile', 'Cast', 'Fill', 'Mean',
] as const;

/**
 * Registers tfjs-core's gradients (its node bundle leaves them out; the ESM build's
 * register_all_gradients registers them into the same global registry) and replaces the GatherV2
 * gradient when the active backend has no UnsortedSegmentSum kernel. Idempotent.
 */
export function installTrainingGradients(): void {
  if (!tf.getGradient('Multiply')) createRequire(import.meta.url)(registerAllGradients());
  installWasmHeapKernels();
  const backend = tf.getBackend();
  if (installedFor === backend || tf.getKernel('UnsortedSegmentSum', backend)) return;
  const original = tf.getGradient('GatherV2');
  tf.registerGradient({
    kernelName: 'GatherV2',
    inputsToSave: ['x', 'indices'],
    gradFunc: (dy, saved, attrs) => {
      const [x, indices] = saved as [tf.Tensor, tf.Tensor]; // inputsToSave
      const { axis, batchDims } = attrs as unknown as { axis: number; batchDims: number };
      if (batchDims !== 0) return original!.gradFunc(dy, saved, attrs);
      const ax = axis < 0 ? axis + x.rank : axis;
      return { x: () => gatherGradient(dy as tf.Tensor, x, indices, ax), indices: () => tf.zerosLike(indices) };
    },
  });
  installedFor = backend;
}

/** d gather(x, indices, axis) / dx for dy [...outer, ...indices.shape, ...inner]. */
function gatherGradient(dy: tf.Tensor, x: tf.Tensor, indices: tf.Tensor, axis: number): tf.Tensor {
  return tf.tidy(() => {
    const outer = x.shape.slice(0, axis);
    const inner = x.shape.slice(axis + 1);
    const outerSize = outer.reduce((a, b) => a * b, 1);
    const innerSize = inner.reduce((a, b) => a * b, 1);
    const n = indices.size;
    // dy → [n, outer, inner] so each gathered row is one update row.
    const dy3 = tf.reshape(dy, [outerSize, n, innerSize]);
    const rows = tf.reshape(tf.transpose(dy3, [1, 0, 2]), [n, outerSize * innerSize]);
    const idx = tf.reshape(tf.cast(indices, 'int32'), [n, 1]);
    const summed = tf.scatterND(idx, rows, [x.shape[axis]!, outerSize * innerSize]); // [V, outer·inner]
    const back = tf.transpose(tf.reshape(summed, [x.shape[axis]!, outerSize, innerSize]), [1, 0, 2]); // [outer, V, inner]
    return tf.reshape(back, x.shape);
  });
}
