// The KV cache the model runs on: per (batch, kv head) one key buffer [C, D] and one transposed value
// buffer [D, C], allocated once and grown by whole chunks, each new position written in place, so a
// decode step copies nothing it already holds (ConcatKVCache copies everything, every step: at 4096
// cached positions the bench measured 407 ms of concatenation per token against 44 ms in place).
// Where the backend keeps tensor data out of reach (tfjs-node), buffers are rebuilt by
// concatenation instead. The attention kernels (attention.ts) read the whole capacity with the
// unused tail masked, so nothing is sliced either.
import { tf } from '../backend/index.ts';
import { inPlaceWritesSupported, mutableView } from '../backend/tensor-memory.ts';
import { TfvlmError } from '../errors.ts';
import { checkKVUpdate, checkTruncate, splitHeads, type KVCache, type KVView } from './kv-cache.ts';

export interface PreallocatedKVCacheOptions {
  /** Positions added per growth step (and the initial capacity's granularity). Default 256. */
  chunk?: number;
  /** Initial capacity (exactly); grown in chunks when exceeded. Default: the first update rounded up to a chunk. */
  capacity?: number;
  /** false: rebuild buffers by concatenation even where in-place writes work (what tfjs-node gets). */
  inPlace?: boolean;
}

/** Host copy (or a heap view) of a tensor's values, for writing into buffers. */
function hostValues(t: tf.Tensor): Float32Array {
  return mutableView(t) ?? (t.dataSync() as Float32Array);
}

export class PreallocatedKVCache implements KVCache {
  private readonly chunk: number;
  private readonly initialCapacity: number;
  private readonly allowInPlace: boolean;
  private held: { batch: number; kvHeads: number; headDim: number } | undefined;
  /** Per (b, kv head): keys [C, D]. */
  private keys: tf.Tensor[] = [];
  /** Per (b, kv head): values transposed [D, C]. */
  private valuesT: tf.Tensor[] = [];
  private capacity = 0;
  private stored = 0;
  /** Whether buffers are written in place (wasm, cpu) or rebuilt by concatenation (tfjs-node). */
  private inPlace = true;

  constructor(opts: PreallocatedKVCacheOptions = {}) {
    this.chunk = opts.chunk ?? 256;
    this.initialCapacity = opts.capacity ?? 0;
    this.allowInPlace = opts.inPlace ?? true;
    if (!Number.isInteger(this.chunk) || this.chunk < 1) throw new TfvlmError(`PreallocatedKVCache: chunk must be a positive integer, got ${opts.chunk}`);
  }

  get offset(): number {
    return this.stored;
  }

  /** Allocated positions (≥ offset). */
  get allocated(): number {
    return this.capacity;
  }

  /** False when the backend keeps tensor data out of reach and buffers are rebuilt by concat. */
  get writesInPlace(): boolean {
    return this.inPlace;
  }

  update(k: tf.Tensor, v: tf.Tensor): void {
    const held = checkKVUpdate(k, v, this.held, 'PreallocatedKVCache');
    if (!this.held) {
      this.held = held;
      this.inPlace = this.allowInPlace && inPlaceWritesSupported();
    }
    if (!this.inPlace) return this.appendByConcat(k, v);
    this.writeInPlace(hostValues(k), hostValues(v), k.shape[2] as number);
  }

  /**
   * T new positions into the buffers (grown first if needed): kSrc and vSrc hold [B·kvHeads, T, D]
   * values, head after head, as k and v [B, kvHeads, T, D] do.
   */
  private writeInPlace(kSrc: Float32Array, vSrc: Float32Array, T: number): void {
    const { batch, kvHeads, headDim: D } = this.held!;
    const needed = this.stored + T;
    if (needed > this.capacity) {
      this.grow(needed <= this.initialCapacity ? this.initialCapacity : Math.ceil(needed / this.chunk) * this.chunk);
    }
    const C = this.capacity;
    for (let i = 0; i < batch * kvHeads; i++) {
      const kBuf = mutableView(this.keys[i]!);
      const vBuf = mutableView(this.valuesT[i]!);
      if (!kBuf || !vBuf) throw new TfvlmError('PreallocatedKVCache: the backend stopped exposing tensor memory');
      kBuf.set(kSrc.subarray(i * T * D, (i + 1) * T * D), this.stored * D);
      for (let t = 0; t < T; t++) {
        const src = (i * T + t) * D;
        for (let d = 0; d < D; d++) vBuf[d * C + this.stored + t] = vSrc[src + d]!;
      }
    }
    this.stored = needed;
  }

  /**
   * Whether appendOne can take a position of batch 1 with these sizes: buffers written in place
   * (or none yet, on a backend that allows it) holding batch 1 of kvHeads × headDim.
   */
  canAppendOne(kvHeads: number, headDim: number): boolean {
    if (!this.held) return this.allowInPlace && inPlaceWritesSupported();
    return this.inPlace && this.held.batch === 1 && this.held.kvHeads === kvHeads && this.held.headDim === headDim;
  }

  /**
   * One position of batch 1 from host arrays (what update does with k, v [1, kvHeads, 1, headDim]):
   * k and v hold kvHeads·headDim values, head after head. Check canAppendOne first.
   */
  appendOne(kvHeads: number, headDim: number, k: Float32Array, v: Float32Array): void {
    if (!this.canAppendOne(kvHeads, headDim)) {
      throw new TfvlmError(`PreallocatedKVCache.appendOne: needs in-place buffers of batch 1, ${kvHeads} kv heads of ${headDim}`);
    }
    if (k.length !== kvHeads * headDim || v.length !== kvHeads * headDim) {
      throw new TfvlmError(`PreallocatedKVCache.appendOne: k and v must hold ${kvHeads}×${headDim} values, got ${k.length} and ${v.length}`);
    }
    if (!this.held) {
      this.held = { batch: 1, kvHeads, headDim };
      this.inPlace = true;
    }
    this.writeInPlace(k, v, 1);
  }

  private grow(capacity: number): void {
    const { batch, kvHeads, headDim: D } = this.held!;
    const old = this.capacity;
    const keys: tf.Tensor[] = [];
    const valuesT: tf.Tensor[] = [];
    for (let i = 0; i < batch * kvHeads; i++) {
      const k = tf.keep(tf.zeros([capacity, D]));
      const v = tf.keep(tf.zeros([D, capacity]));
      if (this.stored > 0) {
        const kOld = mutableView(this.keys[i]!)!;
        const vOld = mutableView(this.valuesT[i]!)!;
        mutableView(k)!.set(kOld.subarray(0, this.stored * D));
        const vNew = mutableView(v)!;
        for (let d = 0; d < D; d++) vNew.set(vOld.subarray(d * old, d * old + this.stored), d * capacity);
      }
      keys.push(k);
      valuesT.push(v);
    }
    tf.dispose([...this.keys, ...this.valuesT]);
    this.keys = keys;
    this.valuesT = valuesT;
    this.capacity = capacity;
  }

  private appendByConcat(k: tf.Tensor, v: tf.Tensor): void {
    const step = splitHeads(k, v);
    const keys = step.keys.map((x, i) => tf.keep(this.keys[i] ? tf.concat([this.keys[i], x], 0) : tf.clone(x)));
    const valuesT = step.valuesT.map((x, i) => tf.keep(this.valuesT[i] ? tf.concat([this.valuesT[i], x], 1) : tf.clone(x)));
    tf.dispose([...this.keys, ...this.valuesT, ...step.keys, ...step.valuesT]);
    this.keys = keys;
    this.valuesT = valuesT;
    this.stored += k.shape[2] as number;
    this.capacity = this.stored;
  }

  view(): KVView {
    const { batch, kvHeads, headDim } = this.held ?? { batch: 0, kvHeads: 0, headDim: 0 };
    return { batch, kvHeads, headDim, length: this.stored, capacity: this.capacity, keys: this.keys, valuesT: this.valuesT };
  }

  /** Forgets positions from `length` on; in place the tail simply falls outside the mask. */
  truncate(length: number): void {
    checkTruncate(length, 'PreallocatedKVCache');
    if (length >= this.stored) return;
    if (length === 0) return this.dispose();
    if (!this.inPlace) {
      const D = this.held!.headDim;
      const keys = this.keys.map((x) => tf.keep(tf.slice(x, [0, 0], [length, D])));
      const valuesT = this.valuesT.map((x) => tf.keep(tf.slice(x, [0, 0], [D, length])));
      tf.dispose([...this.keys, ...this.valuesT]);
      this.keys = keys;
      this.valuesT = valuesT;
      this.capacity = length;
    }
    this.stored = length;
  }

  dispose(): void {
    tf.dispose([...this.keys, ...this.valuesT]);
    this.keys = [];
    this.valuesT = [];
    this.capacity = 0;
    this.stored = 0;
    this.held = undefined;
  }
}

/** One cache per decoder layer; `capacity`: the positions it will hold, when known (else grown in chunks). */
export function createKVCaches(numLayers: number, capacity?: number): KVCache[] {
  return Array.from({ length: numLayers }, () => new PreallocatedKVCache({ capacity }));
}
