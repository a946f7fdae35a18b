// Child process for webgpu.test.ts: starts the backend the environment names and prints one JSON
// line saying which wasm-only paths are on (all must be off on webgpu), what residence a 'stored'
// load gets, and how synchronous reads of host and GPU tensors behave.
import { initBackend, readsSync, tf } from '../../src/backend/index.ts';
import { fusedKernelsActive } from '../../src/backend/fused-kernels.ts';
import { inPlaceWritesSupported } from '../../src/backend/tensor-memory.ts';
import { TfvlmError } from '../../src/errors.ts';
import { heapKernels } from '../../src/layers/heap-attention.ts';
import { packedLinearKernelActive } from '../../src/layers/packed-linear-kernel.ts';
import { weightLoadOptions } from '../../src/models/load-options.ts';

const backend = await initBackend();
// 4096 values: webgpu runs ops on inputs under 1000 values on the CPU (WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD).
const host = tf.tensor1d(Float32Array.from({ length: 4096 }, (_, i) => i));
const used = tf.add(host, host); // uploads `host`, computes on the GPU
const sum = (a: ArrayLike<number>) => Array.from(a).reduce((x, y) => x + y, 0);
let gpuRead: { error: string; tfvlmError: boolean } | { sum: number };
try {
  gpuRead = { sum: sum(used.dataSync()) };
} catch (e) {
  gpuRead = { error: (e as Error).message, tfvlmError: e instanceof TfvlmError };
}
console.log(JSON.stringify({
  backend,
  readsSync: readsSync(),
  fusedKernels: fusedKernelsActive(),
  packedLinearKernel: packedLinearKernelActive(),
  heapKernels: heapKernels() !== undefined,
  inPlaceWrites: inPlaceWritesSupported(),
  storedLoadsAs: weightLoadOptions({ weights: 'stored' }, {}).weights,
  hostSumAfterUse: sum(host.dataSync()),
  gpuSumAsync: sum(await used.data()),
  gpuRead,
}));
