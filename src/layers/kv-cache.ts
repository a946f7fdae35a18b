// Per-layer key/value cache (cf. mlx-lm models/cache.py KVCache). A cache only stores: `update`
// appends a step's keys and values, `view` shows what is stored in the layout the attention kernels
// read (layers/attention.ts), `offset` counts the stored positions (RoPE reads it to place new
// tokens), `truncate` forgets a tail. ConcatKVCache is the simplest correct store (and the
// reference in tests); the model uses PreallocatedKVCache (preallocated-kv-cache.ts), which writes
// new positions in place.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';

/**
 * What a cache holds, per (batch b, kv head j) at index b·kvHeads + j: keys [capacity, D] and values
 * transposed [D, capacity]. Positions from `length` on are unused (zeros or stale). The tensors
 * belong to the cache: valid until its next update, truncate or dispose; never dispose them.
 */
export interface KVView {
  batch: number;
  kvHeads: number;
  headDim: number;
  /** Stored positions. */
  length: number;
  /** Rows of every keys buffer (≥ length). */
  capacity: number;
  keys: tf.Tensor[];
  valuesT: tf.Tensor[];
}

export interface KVCache {
  /** Positions stored so far. */
  readonly offset: number;
  /** Appends k, v [B, Hkv, T, D] (copied; the caller keeps ownership). */
  update(k: tf.Tensor, v: tf.Tensor): void;
  /** What is stored, for the attention kernels. */
  view(): KVView;
  /** Forgets every position from `length` on (e.g. a chat whose history was re-tokenised differently). */
  truncate(length: number): void;
  dispose(): void;
}

/** Whether t is 4-D (narrows its shape to [number, number, number, number]). */
function isRank4(t: tf.Tensor): t is tf.Tensor4D {
  return t.rank === 4;
}

/** [B, Hkv, D] of a k/v pair, checked against what a cache already holds. */
export function checkKVUpdate(k: tf.Tensor, v: tf.Tensor, held: { batch: number; kvHeads: number; headDim: number } | undefined, what: string) {
  if (!isRank4(k) || !isRank4(v) || k.shape.some((d, i) => d !== v.shape[i])) {
    throw new TfvlmError(`${what} update: k and v must both be [B, Hkv, T, D], got [${k.shape}] and [${v.shape}]`);
  }
  const [batch, kvHeads, , headDim] = k.shape;
  if (held && (held.batch !== batch || held.kvHeads !== kvHeads || held.headDim !== headDim)) {
    throw new TfvlmError(`${what} update: cache holds [${held.batch}, ${held.kvHeads}, *, ${held.headDim}], got [${k.shape}]`);
  }
  return { batch, kvHeads, headDim };
}

export function checkTruncate(length: number, what: string): void {
  if (!Number.isInteger(length) || length < 0) throw new TfvlmError(`${what} truncate: bad length ${length}`);
}

/** Per (batch, kv head) keys [T, D] and transposed values [D, T] of a step (new tensors). */
export function splitHeads(k: tf.Tensor, v: tf.Tensor): { keys: tf.Tensor[]; valuesT: tf.Tensor[] } {
  const [B, Hkv, T, D] = (k as tf.Tensor4D).shape; // 4-D: checkKVUpdate checked it
  return tf.tidy(() => ({
    keys: tf.unstack(tf.reshape(k, [B * Hkv, T, D])),
    valuesT: tf.unstack(tf.transpose(tf.reshape(v, [B * Hkv, T, D]), [0, 2, 1])),
  }));
}

/** Stores by concatenating every step onto what it holds (one copy of everything per step). */
export class ConcatKVCache implements KVCache {
  private held: { batch: number; kvHeads: number; headDim: number } | undefined;
  private keys: tf.Tensor[] = [];
  private valuesT: tf.Tensor[] = [];
  private stored = 0;

  get offset(): number {
    return this.stored;
  }

  update(k: tf.Tensor, v: tf.Tensor): void {
    this.held = checkKVUpdate(k, v, this.held, 'KV cache');
    const step = splitHeads(k, v);
    if (this.stored === 0) {
      this.keys = step.keys.map((x) => tf.keep(x));
      this.valuesT = step.valuesT.map((x) => tf.keep(x));
    } else {
      const keys = step.keys.map((x, i) => tf.keep(tf.concat([this.keys[i]!, x], 0)));
      const valuesT = step.valuesT.map((x, i) => tf.keep(tf.concat([this.valuesT[i]!, x], 1)));
      tf.dispose([...this.keys, ...this.valuesT, ...step.keys, ...step.valuesT]);
      this.keys = keys;
      this.valuesT = valuesT;
    }
    this.stored += k.shape[2] as number;
  }

  view(): KVView {
    const { batch, kvHeads, headDim } = this.held ?? { batch: 0, kvHeads: 0, headDim: 0 };
    return { batch, kvHeads, headDim, length: this.stored, capacity: this.stored, keys: this.keys, valuesT: this.valuesT };
  }

  truncate(length: number): void {
    checkTruncate(length, 'KV cache');
    if (length >= this.stored) return;
    if (length === 0) return this.dispose();
    const D = this.held!.headDim;
    const keys = this.keys.map((x) => tf.keep(tf.slice(x, [0, 0], [length, D])));
    const valuesT = this.valuesT.map((x) => tf.keep(tf.slice(x, [0, 0], [D, length])));
    tf.dispose([...this.keys, ...this.valuesT]);
    this.keys = keys;
    this.valuesT = valuesT;
    this.stored = length;
  }

  /**
   * A new cache holding this one's positions once per row of a batch of n (this cache must hold batch
   * 1): a shared prefix that n continuations then extend each their own way.
   */
  tile(n: number): ConcatKVCache {
    const out = new ConcatKVCache();
    if (!this.held) return out;
    if (this.held.batch !== 1) throw new TfvlmError(`only a batch-1 prefix can be tiled, this cache holds batch ${this.held.batch}`);
    // Clones share storage (tfjs counts references), so each row owns its handles without a copy.
    const repeat = (xs: tf.Tensor[]) => Array.from({ length: n }, () => xs.map((x) => tf.keep(tf.clone(x)))).flat();
    out.held = { ...this.held, batch: n };
    out.keys = repeat(this.keys);
    out.valuesT = repeat(this.valuesT);
    out.stored = this.stored;
    return out;
  }

  dispose(): void {
    tf.dispose([...this.keys, ...this.valuesT]);
    this.keys = [];
    this.valuesT = [];
    this.stored = 0;
    this.held = undefined;
  }
}

export function disposeKVCaches(caches: KVCache[]): void {
  for (const c of caches) c.dispose();
}
