// Writing into a tensor's storage in place, for caches that must not copy what they already hold.
// tfjs treats tensor data as immutable, so this is only safe on a tensor whose storage nobody else
// shares (created by tf.zeros, never cloned or reshaped out) and that is never the right-hand
// operand of a wasm matMul: XNNPACK packs that operand once and caches it by tensor id
// (tfjs-backend-wasm src/cc/batch_mat_mul_impl.cc), so later writes would go unseen.
import { tf } from './index.ts';
import { fastPathsVerified } from './tfjs-versions.ts';

interface WasmBackendLike {
  typedArrayFromHeap(t: { shape: number[]; dtype: string; dataId: object }): Float32Array;
}

interface CpuBackendLike {
  data: { get(dataId: object): { values?: unknown } | undefined };
}

/**
 * A live float32 view of `t`'s storage (wasm heap or the cpu backend's array), or undefined where
 * the backend keeps data out of reach (tfjs-node) or runs a tfjs release the writes were not verified
 * on (tfjs-versions.ts). Take a fresh view for every write: the wasm
 * heap may grow and move between ops.
 */
export function mutableView(t: tf.Tensor): Float32Array | undefined {
  if (t.dtype !== 'float32' || t.isDisposed) return undefined;
  const name = tf.getBackend();
  const backend = tf.backend() as unknown;
  if (name === 'wasm') {
    // The in-place writes rely on how this tfjs-backend-wasm release caches matMul operands.
    if (!fastPathsVerified()) return undefined;
    const wasm = backend as WasmBackendLike;
    return typeof wasm.typedArrayFromHeap === 'function' ? wasm.typedArrayFromHeap(t as never) : undefined;
  }
  if (name === 'cpu') {
    const values = (backend as CpuBackendLike).data?.get(t.dataId)?.values;
    return values instanceof Float32Array && values.length === t.size ? values : undefined;
  }
  return undefined;
}

/** Whether the active backend allows in-place writes (probed on a scratch tensor). */
export function inPlaceWritesSupported(): boolean {
  const probe = tf.zeros([1]);
  try {
    return mutableView(probe) !== undefined;
  } finally {
    probe.dispose();
  }
}
