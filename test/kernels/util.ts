// Shared by the kernel tests: seeded random data in each weight dtype, and a bump allocator over an
// arena (every offset 16-byte aligned, as the kernels require).
import { KernelPool, type KernelArena, type QuantBits, type QuantGroupSize, type WeightDType } from '../../src/kernels/index.ts';
import type { KernelExports } from '../../src/kernels/module.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, type QuantizedMatrix } from '../../src/kernels/reference.ts';

export const DTYPES: WeightDType[] = ['f32', 'bf16', 'f16'];
export const ELEMENT_BYTES: Record<WeightDType, number> = { f32: 4, bf16: 2, f16: 2 };

import { rng } from '../layers/util.ts';

export { rng };

/** n values uniform in [-1, 1) as float32. */
export function randomF32(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

/**
 * n weights of `dtype` made from float32 values in [-1, 1) by rounding: f32 values, or the 16-bit
 * bits of bf16/f16.
 */
export function randomWeights(dtype: WeightDType, n: number, seed: number): Float32Array | Uint16Array {
  const v = randomF32(n, seed);
  if (dtype === 'f32') return v;
  return Uint16Array.from(v, dtype === 'bf16' ? f32ToBf16 : f32ToF16);
}

/** The values of weights made by randomWeights, as float32. */
export function weightValues(dtype: WeightDType, w: Float32Array | Uint16Array): Float32Array {
  if (dtype === 'f32') return w as Float32Array;
  return Float32Array.from(w, dtype === 'bf16' ? bf16ToF32 : f16ToF32);
}

/** Hands out 16-byte aligned regions of an arena, front to back. */
export class Bump {
  private next = 0;
  constructor(readonly arena: KernelArena) {}
  take(bytes: number): number {
    const at = this.next;
    this.next += Math.ceil(bytes / 16) * 16;
    if (this.next > this.arena.bytes) throw new Error(`test arena too small: ${this.next} > ${this.arena.bytes}`);
    return at;
  }
  /** Copies f32 values, 16-bit bits or other raw words into a new region; returns its offset. */
  put(values: Float32Array | Uint16Array | Uint32Array | Uint8Array): number {
    const at = this.take(values.byteLength);
    this.arena.view(at, values.byteLength).set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return at;
  }
  reset(): void {
    this.next = 0;
  }
}

/** A Uint16Array view of `count` 16-bit values at offset. */
export function u16(arena: KernelArena, offset: number, count: number): Uint16Array {
  const v = arena.view(offset, 2 * count);
  return new Uint16Array(v.buffer, v.byteOffset, count);
}

/**
 * A random quantized [N, K]: uniform codes, bf16 scales and biases (as checkpoints store them,
 * widened) in MLX's pattern, s > 0 with b ≈ −s·2^(bits−1) so weights straddle 0 and s·q + b
 * cancels; `plain` instead draws s and b as any float32 in [-1, 1) (products no longer exact).
 */
export function randomQuantized(
  bits: QuantBits, groupSize: QuantGroupSize, N: number, K: number, seed: number, plain = false,
): QuantizedMatrix {
  const r = rng(seed);
  const codes = new Uint32Array((N * K * bits) / 32);
  for (let i = 0; i < codes.length; i++) codes[i] = (r() * 2 ** 32) >>> 0;
  const groups = (N * K) / groupSize;
  const scales = new Float32Array(groups);
  const biases = new Float32Array(groups);
  for (let g = 0; g < groups; g++) {
    if (plain) {
      scales[g] = r() * 2 - 1;
      biases[g] = r() * 2 - 1;
    } else {
      const s = bf16ToF32(f32ToBf16(0.001 + 0.02 * r()));
      scales[g] = s;
      biases[g] = bf16ToF32(f32ToBf16(-s * 2 ** (bits - 1) * (0.9 + 0.2 * r())));
    }
  }
  return { bits, groupSize, N, K, codes, scales, biases };
}

/**
 * Runs fn with the kernels on a bare 2 MiB memory on one thread (an arena has scratch pages past its
 * bytes; here a read past the last byte traps), given the exports, its bytes and its end.
 */
export function onBareMemory(fn: (k: KernelExports, bytes: Uint8Array, memory: WebAssembly.Memory) => void): void {
  const pool = new KernelPool({ threads: 1 });
  const memory = new WebAssembly.Memory({ initial: 32, maximum: 32, shared: true });
  const id = pool.register(memory);
  try {
    fn(pool.exports(id), new Uint8Array(memory.buffer as unknown as SharedArrayBuffer), memory);
  } finally {
    pool.unregister(id);
    pool.close();
  }
}
