// Per-layer key/value cache (cf. mlx-lm models/cache.py KVCache). `offset` is the number of
// positions already stored; RoPE reads it to place new tokens. ConcatKVCache here is the simplest
// correct strategy (and the reference in tests); the model uses PreallocatedKVCache
// (kv-cache-strategies.ts), which writes new positions in place and attends without copying —
// the bench's decode rows show why (3–15× faster from 1024 cached positions on).
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { PreallocatedKVCache } from './kv-cache-strategies.ts';

export interface KVCache {
  /** Positions stored so far. */
  readonly offset: number;
  /**
   * Appends k, v [B, Hkv, T, D] and returns all keys/values [B, Hkv, offset+T, D]. The returned
   * tensors are owned by the cache (valid until the next update or dispose); do not dispose them.
   */
  update(k: tf.Tensor, v: tf.Tensor): { k: tf.Tensor; v: tf.Tensor };
  /** Forgets every position from `length` on (e.g. a chat whose history was re-tokenised differently). */
  truncate?(length: number): void;
  /**
   * Appends k, v and returns softmax(q·kᵀ·scale + mask)·v over every stored position in one step,
   * for caches that can attend without materialising the whole K/V (attention() prefers it).
   */
  appendAndAttend?(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor | undefined, scale: number): tf.Tensor;
  /**
   * One new position, no mask, fused kernels active: appends k, v [B, Hkv, 1, D] and attends with
   * queries already scaled and grouped, per (batch, kv head) [D, groups] → [B, 1, H·D] (heads merged).
   */
  decodeAttend?(qTs: tf.Tensor[], k: tf.Tensor, v: tf.Tensor): tf.Tensor;
  dispose(): void;
}

export class ConcatKVCache implements KVCache {
  private keys: tf.Tensor | undefined;
  private values: tf.Tensor | undefined;
  private stored = 0;

  get offset(): number {
    return this.stored;
  }

  update(k: tf.Tensor, v: tf.Tensor): { k: tf.Tensor; v: tf.Tensor } {
    if (k.rank !== 4 || v.rank !== 4 || k.shape.some((d, i) => d !== v.shape[i])) {
      throw new TfvlmError(`KV cache update: k and v must both be [B, Hkv, T, D], got [${k.shape}] and [${v.shape}]`);
    }
    if (this.keys) {
      const [b, h, , d] = this.keys.shape;
      if (k.shape[0] !== b || k.shape[1] !== h || k.shape[3] !== d) {
        throw new TfvlmError(`KV cache update: cache holds [${b}, ${h}, *, ${d}], got [${k.shape}]`);
      }
    }
    const newKeys = tf.keep(this.keys ? tf.concat([this.keys, k], 2) : tf.clone(k));
    const newValues = tf.keep(this.values ? tf.concat([this.values, v], 2) : tf.clone(v));
    this.keys?.dispose();
    this.values?.dispose();
    this.keys = newKeys;
    this.values = newValues;
    this.stored += k.shape[2] as number;
    return { k: newKeys, v: newValues };
  }

  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0) throw new TfvlmError(`KV cache truncate: bad length ${length}`);
    if (length >= this.stored || !this.keys || !this.values) return;
    if (length === 0) return this.dispose();
    const [b, h, , d] = this.keys.shape;
    const keys = tf.slice(this.keys, [0, 0, 0, 0], [b, h, length, d]);
    const values = tf.slice(this.values, [0, 0, 0, 0], [b, h, length, d]);
    this.keys.dispose();
    this.values.dispose();
    this.keys = keys;
    this.values = values;
    this.stored = length;
  }

  dispose(): void {
    this.keys?.dispose();
    this.values?.dispose();
    this.keys = undefined;
    this.values = undefined;
    this.stored = 0;
  }
}

/** One cache per decoder layer. */
export function createKVCaches(numLayers: number): KVCache[] {
  return Array.from({ length: numLayers }, () => new PreallocatedKVCache());
}

export function disposeKVCaches(caches: KVCache[]): void {
  for (const c of caches) c.dispose();
}
