// A KV cache that can be copied across a batch: the image + prompt prefix is encoded once (batch 1)
// into TensorKVCaches, then `tiledCaches` gives every candidate row its own view of that prefix, so a
// batch of continuations runs as one forward over [n, L] on top of the shared prefix.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import type { KVCache } from '../layers/kv-cache.ts';

export class TensorKVCache implements KVCache {
  private keys: tf.Tensor | undefined;
  private values: tf.Tensor | undefined;

  /** Starts from k, v [B, Hkv, S, D] (kept, owned by the cache) or empty. */
  constructor(keys?: tf.Tensor, values?: tf.Tensor) {
    this.keys = keys ? tf.keep(keys) : undefined;
    this.values = values ? tf.keep(values) : undefined;
  }

  get offset(): number {
    return this.keys ? (this.keys.shape[2] as number) : 0;
  }

  get batch(): number {
    return this.keys ? (this.keys.shape[0] as number) : 0;
  }

  update(k: tf.Tensor, v: tf.Tensor): { k: tf.Tensor; v: tf.Tensor } {
    if (this.keys && (this.keys.shape[0] !== k.shape[0] || this.keys.shape[1] !== k.shape[1] || this.keys.shape[3] !== k.shape[3])) {
      throw new TfvlmError(`prefix cache holds [${this.keys.shape}], cannot append [${k.shape}]`);
    }
    const keys = tf.keep(this.keys ? tf.concat([this.keys, k], 2) : tf.clone(k));
    const values = tf.keep(this.values ? tf.concat([this.values as tf.Tensor, v], 2) : tf.clone(v));
    this.dispose();
    this.keys = keys;
    this.values = values;
    return { k: keys, v: values };
  }

  /** A new cache holding this one's positions repeated over a batch of n (this cache must hold batch 1). */
  tile(n: number): TensorKVCache {
    if (!this.keys || !this.values) return new TensorKVCache();
    if (this.keys.shape[0] !== 1) throw new TfvlmError(`only a batch-1 prefix can be tiled, this cache holds batch ${this.keys.shape[0]}`);
    // n copies joined on the batch axis: on the wasm backend ~10× faster than tf.tile / broadcastTo.
    const repeat = (t: tf.Tensor) => (n === 1 ? tf.clone(t) : tf.concat(new Array<tf.Tensor>(n).fill(t), 0));
    return new TensorKVCache(repeat(this.keys), repeat(this.values));
  }

  dispose(): void {
    this.keys?.dispose();
    this.values?.dispose();
    this.keys = undefined;
    this.values = undefined;
  }
}

export function emptyCaches(layers: number): TensorKVCache[] {
  return Array.from({ length: layers }, () => new TensorKVCache());
}

/** Every layer's prefix tiled over n rows; dispose the result with disposeCaches. */
export function tiledCaches(prefix: TensorKVCache[], n: number): TensorKVCache[] {
  return prefix.map((c) => c.tile(n));
}

export function disposeCaches(caches: KVCache[]): void {
  for (const c of caches) c.dispose();
}
