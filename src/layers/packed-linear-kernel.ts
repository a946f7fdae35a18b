// The packed linear as a tfjs kernel on the wasm backend: x is read through a view of the tfjs heap
// and y written straight into its output tensor's memory, where the plain path (linear.ts) copies x
// out with dataSync, allocates y in JavaScript and copies it in again. Per decode step that is two
// copies and an allocation fewer per Linear; in a long prefill, no y-sized garbage (a 7B model's
// MLP outputs are tens of MB each, which the process's allocator then keeps).
import { tf } from '../backend/index.ts';
import { packedMatmul } from './packed-matmul.ts';
import type { PackedMatrix } from './weight-store.ts';

const PACKED_LINEAR = 'TfvlmPackedLinear';

interface HeapTensorInfo {
  dataId: object;
  shape: number[];
  dtype: string;
}

interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: string): HeapTensorInfo;
  typedArrayFromHeap(t: HeapTensorInfo): Float32Array;
}

function packedLinearKernel({ inputs, attrs, backend }: {
  inputs: { x: HeapTensorInfo }; attrs: { matrix: PackedMatrix }; backend: WasmHeapBackend;
}): HeapTensorInfo {
  const { x } = inputs;
  const m = attrs.matrix;
  const rows = x.shape.reduce((a, b) => a * b, 1) / m.cols;
  const out = backend.makeOutput([...x.shape.slice(0, -1), m.rows], 'float32');
  // Views after makeOutput: allocating may have grown (replaced) the heap's buffer.
  packedMatmul(m, backend.typedArrayFromHeap(x), rows, backend.typedArrayFromHeap(out));
  return out;
}

let registered = false;

/** Whether the heap-view kernel can run: the wasm backend (registered on first use). */
export function packedLinearKernelActive(): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  if (!registered) {
    if (!tf.getKernel(PACKED_LINEAR, 'wasm')) {
      tf.registerKernel({ kernelName: PACKED_LINEAR, backendName: 'wasm', kernelFunc: packedLinearKernel as unknown as tf.KernelFunc });
    }
    registered = true;
  }
  return true;
}

/** y = x·Wᵀ (+ b) for float32 x [..., m.cols] on the wasm backend (packedLinearKernelActive first). */
export function packedLinearOnHeap(m: PackedMatrix, x: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel(PACKED_LINEAR, { x } as tf.NamedTensorMap, { matrix: m } as unknown as tf.NamedAttrMap) as tf.Tensor;
}
