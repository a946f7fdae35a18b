// One new token through a Llama decoder whose linears are packed (layers/weight-store.ts), on plain
// float32 arrays: the fast path beside decoderLayer (model.ts), which stays the reference. One token
// for each of N sequences (N = 1 for generate; more under continuous batching, each row with its own
// caches), no attention mask, no capture, RoPE over whole heads, SiLU MLP. Per layer, as decoderLayer:
//   RMSNorm → q, k, v products → RoPE (q scaled by 1/√D) → k, v into the KV cache in place →
//   attention over the cache (layers/heap-attention.ts) → o product → residual + RMSNorm →
//   gate, up products → SiLU·up → down product → residual.
// q, k, v are one product, and gate, up another, when their matrices lie back to back
// (layers/packed-stack.ts): each kernel call is a thread-pool round trip, and a step makes 4 per
// layer instead of 7 (SmolVLM-256M bf16, 8 streams: +5% decode tok/s).
// The norms, RoPE, SiLU and softmax are the fused kernels' own arithmetic (backend/fused-math.ts) and
// the products the same linear kernels, so only the attention's dot products sum in another order
// than the tfjs path's matMuls. What it saves is tfjs's per-op cost: a SmolVLM-256M step runs 665
// tfjs kernels on that path and none here (q4: 24.6 → 16.0 ms per token; README, Backends).
import { tf } from '../../backend/index.ts';
import { fusedKernelsActive } from '../../backend/fused-kernels.ts';
import { addRmsNormRow, rmsNormRow, rotaryValue, siluMulRange } from '../../backend/fused-math.ts';
import { mutableView } from '../../backend/tensor-memory.ts';
import { silu } from '../../layers/activations.ts';
import { attendOneToken, heapKernels } from '../../layers/heap-attention.ts';
import type { KVCache } from '../../layers/kv-cache.ts';
import type { Linear } from '../../layers/linear.ts';
import { packedMatvecRows } from '../../layers/packed-matmul.ts';
import { PackedStack } from '../../layers/packed-stack.ts';
import { PreallocatedKVCache } from '../../layers/preallocated-kv-cache.ts';
import type { RMSNorm } from '../../layers/rms-norm.ts';
import type { RotaryTables } from '../../layers/rotary.ts';
import type { PackedMatrix } from '../../layers/weight-store.ts';
import { Toggle } from '../../util/toggle.ts';
import type { LlamaConfig } from './config.ts';
import type { LlamaWeights } from './model.ts';

const f32 = Math.fround;

const decodeStep = new Toggle(process.env.TFVLM_DECODE_STEP !== '0');

/** Runs fn with the fast decode step off (every token through decoderLayer), then restores it. */
export function withoutDecodeStep<T>(fn: () => T): T {
  return decodeStep.without(fn);
}

interface LayerMatrices {
  /** q, k, v side by side: [H·D | Hkv·D | Hkv·D] per row. */
  qkv: PackedStack;
  o: PackedMatrix;
  /** gate, up side by side: [I | I] per row. */
  gateUp: PackedStack;
  down: PackedMatrix;
}

/** Host values of a norm weight, read once per tensor (a reloaded weight is a new tensor). */
class NormValues {
  private tensor: tf.Tensor | undefined;
  private values: Float32Array<ArrayBufferLike> = new Float32Array(0);

  of(norm: RMSNorm): Float32Array<ArrayBufferLike> {
    if (this.tensor !== norm.weight) {
      this.values = norm.weight.dataSync() as Float32Array;
      this.tensor = norm.weight;
    }
    return this.values;
  }
}

type BufferName = 'h' | 'sum' | 'normed' | 'delta' | 'qkv' | 'kRot' | 'attn' | 'gateUp' | 'act';
type Buffers = Record<BufferName, Float32Array>;

/** The step's host arrays (floats per row of each), for n rows; reallocated when a step has more rows than any before. */
class RowBuffers {
  private rows = 0;
  private arrays = {} as Buffers;

  constructor(private readonly sizes: Record<BufferName, number>) {}

  of(n: number): Buffers {
    const names = Object.keys(this.sizes) as BufferName[];
    if (n > this.rows) {
      for (const name of names) this.arrays[name] = new Float32Array(n * this.sizes[name]);
      this.rows = n;
    }
    const views = {} as Buffers;
    for (const name of names) views[name] = this.arrays[name].subarray(0, n * this.sizes[name]);
    return views;
  }
}

export class LlamaDecodeStep {
  private readonly H: number;
  private readonly Hkv: number;
  private readonly D: number;
  private readonly hidden: number;
  private readonly intermediate: number;
  private readonly eps: number;
  private readonly scale: number;
  private readonly norms: { input: NormValues; post: NormValues }[];
  private readonly finalNorm = new NormValues();
  /** Host arrays, reused every step. */
  private readonly buffers: RowBuffers;

  private constructor(
    private readonly config: LlamaConfig,
    private readonly weights: LlamaWeights,
    private readonly layers: LayerMatrices[],
    private readonly head: PackedMatrix,
  ) {
    const c = config;
    [this.H, this.Hkv, this.D, this.hidden, this.eps] = [c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.hidden_size, c.rms_norm_eps];
    this.intermediate = c.intermediate_size;
    this.scale = 1 / Math.sqrt(this.D);
    this.norms = layers.map(() => ({ input: new NormValues(), post: new NormValues() }));
    const [hidden, qDim, kvDim, I] = [this.hidden, this.H * this.D, this.Hkv * this.D, this.intermediate];
    this.buffers = new RowBuffers({
      h: hidden, sum: hidden, normed: hidden, delta: hidden, qkv: qDim + 2 * kvDim, kRot: kvDim, attn: qDim, gateUp: 2 * I, act: I,
    });
  }

  /** The step for a decoder whose every linear (and LM head) is packed and whose MLP is SiLU; else undefined. */
  static for(config: LlamaConfig, weights: LlamaWeights, lmHead: Linear): LlamaDecodeStep | undefined {
    const packed = (l: Linear) => l.packed;
    const layers: LayerMatrices[] = [];
    for (const layer of weights.layers) {
      const { q, k, v, o } = layer.self_attn;
      const { gate, up, down, act } = layer.mlp;
      const m = { q: packed(q), k: packed(k), v: packed(v), o: packed(o), gate: packed(gate), up: packed(up), down: packed(down) };
      if (act !== silu || !m.q || !m.k || !m.v || !m.o || !m.gate || !m.up || !m.down) return undefined;
      layers.push({ qkv: new PackedStack([m.q, m.k, m.v]), o: m.o, gateUp: new PackedStack([m.gate, m.up]), down: m.down });
    }
    if (!lmHead.packed) return undefined;
    return new LlamaDecodeStep(config, weights, layers, lmHead.packed);
  }

  /**
   * Whether these tokens can take the step: the fast kernels are on, the rotary tables cover whole
   * heads, and every layer's cache of every row can take one position of batch 1 in place.
   */
  accepts(rotary: RotaryTables, caches: KVCache[][]): boolean {
    return decodeStep.enabled && fusedKernelsActive() && heapKernels() !== undefined && rotary.cos.shape[3] === this.D
      && caches.every((cache) => cache.every((c) => c instanceof PreallocatedKVCache && c.canAppendOne(this.Hkv, this.D)));
  }

  /**
   * Logits [N, 1, vocab] for inputs_embeds x [N, 1, hidden], row r the next token of the sequence
   * whose per-layer caches are caches[r] (accepts() first); appends to every cache. The linears take
   * all N rows in one pass over the weights (packedMatvecRows: each row as one row alone gives it);
   * the norms, RoPE and attention run row by row.
   */
  run(x: tf.Tensor, rotary: RotaryTables, caches: KVCache[][]): tf.Tensor {
    const kernels = heapKernels()!;
    const { H, Hkv, D, hidden, intermediate: I, eps } = this;
    const [N, qDim, kvDim] = [caches.length, H * D, Hkv * D];
    const qkvDim = qDim + 2 * kvDim;
    const b = this.buffers.of(N);
    const cos = rotary.cos.dataSync() as Float32Array; // [N, D]
    const sin = rotary.sin.dataSync() as Float32Array;
    b.h.set(x.dataSync() as Float32Array);
    const row = (a: Float32Array, r: number, size: number) => a.subarray(r * size, (r + 1) * size);
    // q [H·D], the merged heads [H·D] and the scores [length] on the tfjs heap, for the attention kernel.
    const longest = Math.max(...caches.map((cache) => cache[0]!.offset)) + 1;
    const scratch = tf.zeros([2 * qDim + longest]);
    try {
      for (let i = 0; i < this.layers.length; i++) {
        // this.layers and this.norms were built from weights.layers: one entry per layer.
        const m = this.layers[i]!;
        const layer = this.weights.layers[i]!;
        const norms = this.norms[i]!;
        const inputNorm = norms.input.of(layer.input_layernorm);
        for (let r = 0; r < N; r++) rmsNormRow(b.h, r * hidden, inputNorm, b.normed, r * hidden, hidden, eps);
        m.qkv.matvecRows(b.normed, N, b.qkv);
        for (let r = 0; r < N; r++) {
          const [rCos, rSin] = [row(cos, r, D), row(sin, r, D)];
          const qkv = row(b.qkv, r, qkvDim);
          rotate(qkv.subarray(qDim, qDim + kvDim), row(b.kRot, r, kvDim), rCos, rSin, D, 1);
          const c = caches[r]![i] as PreallocatedKVCache;
          c.appendOne(Hkv, D, row(b.kRot, r, kvDim), qkv.subarray(qDim + kvDim));
          // Views after the append: growing the cache allocates, which may grow the heap.
          const s = mutableView(scratch)!;
          const q = s.subarray(0, qDim);
          const out = s.subarray(qDim, 2 * qDim);
          rotate(qkv.subarray(0, qDim), q, rCos, rSin, D, this.scale);
          const view = c.view();
          attendOneToken(kernels, {
            q, out, scores: s.subarray(2 * qDim), length: c.offset, capacity: view.capacity, headDim: D,
            keys: view.keys.map((t) => mutableView(t)!), valuesT: view.valuesT.map((t) => mutableView(t)!),
          });
          b.attn.set(out, r * qDim);
        }
        packedMatvecRows(m.o, b.attn, N, b.delta);
        const postNorm = norms.post.of(layer.post_attention_layernorm);
        for (let r = 0; r < N; r++) addRmsNormRow(b.h, b.delta, postNorm, b.sum, b.normed, r * hidden, hidden, eps);
        m.gateUp.matvecRows(b.normed, N, b.gateUp);
        for (let r = 0; r < N; r++) {
          const gateUp = row(b.gateUp, r, 2 * I);
          siluMulRange(gateUp, gateUp.subarray(I), row(b.act, r, I), I);
        }
        packedMatvecRows(m.down, b.act, N, b.delta);
        for (let d = 0; d < N * hidden; d++) b.h[d] = f32(b.sum[d]! + b.delta[d]!);
      }
    } finally {
      scratch.dispose();
    }
    const finalNorm = this.finalNorm.of(this.weights.norm);
    for (let r = 0; r < N; r++) rmsNormRow(b.h, r * hidden, finalNorm, b.normed, r * hidden, hidden, eps);
    return tf.tensor3d(packedMatvecRows(this.head, b.normed, N) as Float32Array, [N, 1, this.head.rows]);
  }
}

/** rotate_half RoPE of every head of x ([n·D]) with one position's cos/sin [D], times scale. */
function rotate(x: Float32Array, out: Float32Array, cos: Float32Array, sin: Float32Array, D: number, scale: number): void {
  const half = D / 2;
  for (let o = 0; o < x.length; o += D) {
    for (let d = 0; d < D; d++) {
      const rotated = d < half ? -x[o + d + half]! : x[o + d - half]!;
      out[o + d] = rotaryValue(x[o + d]!, rotated, cos[d]!, sin[d]!, scale);
    }
  }
}
