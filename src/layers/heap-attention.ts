// One new token's attention over a KV cache without a tfjs op per head: linear.wasm instantiated on
// the tfjs wasm heap itself (the threaded build's shared memory), so the cache's key buffers [C, D]
// and transposed value buffers [D, C] (preallocated-kv-cache.ts) are read where they are, by
// rows_dot_f32: q·k down the keys, a softmax (fused-math.ts, as the fused softmax kernel), p·v along
// the values. The tfjs path (attention.ts decodeStepFused) runs 2·Hkv matMuls, a softmax and a merge
// per layer, ~12 µs each; this runs 2·H wasm calls of a few hundred ns. Results differ from it only
// in the order the dot products sum.
import { tf } from '../backend/index.ts';
import { softmaxStrided } from '../backend/fused-math.ts';
import { fastPathsVerified } from '../backend/tfjs-versions.ts';
import { instantiate, kernelModule, type KernelExports } from '../kernels/module.ts';

let onHeap: { memory: WebAssembly.Memory; kernels: KernelExports } | undefined;

/**
 * The kernels on the tfjs wasm heap's memory, or undefined: another backend, the single-threaded
 * build (its memory is not shared, and linear.wasm imports a shared one), or a tfjs release whose
 * heap layout was not verified (tfjs-versions.ts).
 */
export function heapKernels(): KernelExports | undefined {
  if (tf.getBackend() !== 'wasm' || !fastPathsVerified()) return undefined;
  const memory = (tf.backend() as unknown as { wasm?: { wasmMemory?: unknown } }).wasm?.wasmMemory;
  // (A page that is not cross-origin isolated has no SharedArrayBuffer at all.)
  if (!(memory instanceof WebAssembly.Memory) || typeof SharedArrayBuffer !== 'function' || !(memory.buffer instanceof SharedArrayBuffer)) return undefined;
  if (onHeap?.memory !== memory) {
    try {
      onHeap = { memory, kernels: instantiate(kernelModule(), memory) };
    } catch {
      return undefined;
    }
  }
  return onHeap.kernels;
}

/** Where one step's attention reads and writes: float32 views of the tfjs heap (heapKernels' memory). */
export interface HeapAttentionStep {
  /** Queries [H, D], rotated and scaled. */
  q: Float32Array;
  /** Per kv head: keys [capacity, D]. */
  keys: Float32Array[];
  /** Per kv head: values transposed [D, capacity]. */
  valuesT: Float32Array[];
  /** Positions stored (the keys and values read: rows [0, length)). */
  length: number;
  capacity: number;
  headDim: number;
  /** At least `length` floats. */
  scores: Float32Array;
  /** Heads merged [H·D]. */
  out: Float32Array;
}

/** out[h·D + d] = Σ_c softmax(q_h·K_jᵀ)_c·V_j[c, d] for every query head h, j = ⌊h·Hkv / H⌋ (repeat_kv). */
export function attendOneToken(kernels: KernelExports, s: HeapAttentionStep): void {
  const { headDim: D, length: S, capacity: C } = s;
  const heads = s.q.length / D;
  const groups = heads / s.keys.length;
  for (let h = 0; h < heads; h++) {
    const j = Math.floor(h / groups);
    kernels.rows_dot_f32(s.keys[j]!.byteOffset, D, S, s.q.byteOffset + 4 * h * D, D, s.scores.byteOffset);
    softmaxStrided(s.scores, s.scores, 0, 1, S);
    kernels.rows_dot_f32(s.valuesT[j]!.byteOffset, C, D, s.scores.byteOffset, S, s.out.byteOffset + 4 * h * D);
  }
}
