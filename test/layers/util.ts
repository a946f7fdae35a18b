// Small helpers for layer tests: a seeded RNG and naive host-side references.
import { tf } from '../../src/backend/index.ts';

/** mulberry32: deterministic uniform [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

export function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  return tf.tensor(randomArray(shape.reduce((a, b) => a * b, 1), seed, scale), shape);
}

/** Reads a tensor's values and disposes it. */
export function take(t: tf.Tensor): Float32Array {
  const v = t.dataSync() as Float32Array;
  t.dispose();
  return Float32Array.from(v);
}
