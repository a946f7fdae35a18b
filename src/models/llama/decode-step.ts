// One new token through a Llama decoder whose linears are packed (layers/weight-store.ts), on plain
// float32 arrays: the fast path beside decoderLayer (model.ts), which stays the reference. Batch 1,
// no attention mask, no capture, RoPE over whole heads, SiLU MLP. Per layer, as decoderLayer:
//   RMSNorm → q, k, v products → RoPE (q scaled by 1/√D) → k, v into the KV cache in place →
//   attention over the cache (layers/heap-attention.ts) → o product → residual + RMSNorm →
//   gate, up products → SiLU·up → down product → residual.
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
import { packedMatmul } from '../../layers/packed-matmul.ts';
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
  q: PackedMatrix;
  k: PackedMatrix;
  v: PackedMatrix;
  o: PackedMatrix;
  gate: PackedMatrix;
  up: PackedMatrix;
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

export class LlamaDecodeStep {
  private readonly H: number;
  private readonly Hkv: number;
  private readonly D: number;
  private readonly hidden: number;
  private readonly eps: number;
  private readonly scale: number;
  private readonly norms: { input: NormValues; post: NormValues }[];
  private readonly finalNorm = new NormValues();
  // Host buffers, reused every step.
  private readonly h: Float32Array;
  private readonly sum: Float32Array;
  private readonly normed: Float32Array;
  private readonly qLin: Float32Array;
  private readonly kLin: Float32Array;
  private readonly vLin: Float32Array;
  private readonly kRot: Float32Array;
  private readonly delta: Float32Array;
  private readonly gate: Float32Array;
  private readonly up: Float32Array;
  private readonly act: Float32Array;

  private constructor(
    private readonly config: LlamaConfig,
    private readonly weights: LlamaWeights,
    private readonly layers: LayerMatrices[],
    private readonly head: PackedMatrix,
  ) {
    const c = config;
    [this.H, this.Hkv, this.D, this.hidden, this.eps] = [c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.hidden_size, c.rms_norm_eps];
    this.scale = 1 / Math.sqrt(this.D);
    this.norms = layers.map(() => ({ input: new NormValues(), post: new NormValues() }));
    const I = c.intermediate_size;
    this.h = new Float32Array(this.hidden);
    this.sum = new Float32Array(this.hidden);
    this.normed = new Float32Array(this.hidden);
    this.delta = new Float32Array(this.hidden);
    this.qLin = new Float32Array(this.H * this.D);
    this.kLin = new Float32Array(this.Hkv * this.D);
    this.vLin = new Float32Array(this.Hkv * this.D);
    this.kRot = new Float32Array(this.Hkv * this.D);
    this.gate = new Float32Array(I);
    this.up = new Float32Array(I);
    this.act = new Float32Array(I);
  }

  /** The step for a decoder whose every linear (and LM head) is packed and whose MLP is SiLU; else undefined. */
  static for(config: LlamaConfig, weights: LlamaWeights, lmHead: Linear): LlamaDecodeStep | undefined {
    const packed = (l: Linear) => l.packed;
    const layers: LayerMatrices[] = [];
    for (const layer of weights.layers) {
      const { q, k, v, o } = layer.self_attn;
      const { gate, up, down, act } = layer.mlp;
      const m = { q: packed(q), k: packed(k), v: packed(v), o: packed(o), gate: packed(gate), up: packed(up), down: packed(down) };
      if (act !== silu || Object.values(m).some((x) => x === undefined)) return undefined;
      layers.push(m as LayerMatrices);
    }
    if (!lmHead.packed) return undefined;
    return new LlamaDecodeStep(config, weights, layers, lmHead.packed);
  }

  /**
   * Whether this token can take the step: the fast kernels are on, the rotary tables cover whole
   * heads, and every layer's cache can take one position of batch 1 in place.
   */
  accepts(rotary: RotaryTables, cache: KVCache[]): boolean {
    return decodeStep.enabled && fusedKernelsActive() && heapKernels() !== undefined && rotary.cos.shape[3] === this.D
      && cache.every((c) => c instanceof PreallocatedKVCache && c.canAppendOne(this.Hkv, this.D));
  }

  /** Logits [1, 1, vocab] for inputs_embeds x [1, 1, hidden] (accepts() first); appends to every cache. */
  run(x: tf.Tensor, rotary: RotaryTables, cache: KVCache[]): tf.Tensor {
    const kernels = heapKernels()!;
    const { H, Hkv, D, hidden, eps } = this;
    const length = cache[0]!.offset + 1;
    const cos = rotary.cos.dataSync() as Float32Array;
    const sin = rotary.sin.dataSync() as Float32Array;
    this.h.set(x.dataSync() as Float32Array);
    // q [H·D], the merged heads [H·D] and the scores [length] on the tfjs heap, for the attention kernel.
    const scratch = tf.zeros([2 * H * D + length]);
    try {
      for (let i = 0; i < this.layers.length; i++) {
        // this.layers and this.norms were built from weights.layers: one entry per layer.
        const m = this.layers[i]!;
        const layer = this.weights.layers[i]!;
        const norms = this.norms[i]!;
        rmsNormRow(this.h, 0, norms.input.of(layer.input_layernorm), this.normed, 0, hidden, eps);
        packedMatmul(m.q, this.normed, 1, this.qLin);
        packedMatmul(m.k, this.normed, 1, this.kLin);
        packedMatmul(m.v, this.normed, 1, this.vLin);
        rotate(this.kLin, this.kRot, cos, sin, D, 1);
        const c = cache[i] as PreallocatedKVCache;
        c.appendOne(Hkv, D, this.kRot, this.vLin);
        // Views after the append: growing the cache allocates, which may grow the heap.
        const s = mutableView(scratch)!;
        const q = s.subarray(0, H * D);
        const out = s.subarray(H * D, 2 * H * D);
        rotate(this.qLin, q, cos, sin, D, this.scale);
        const view = c.view();
        attendOneToken(kernels, {
          q, out, scores: s.subarray(2 * H * D), length, capacity: view.capacity, headDim: D,
          keys: view.keys.map((t) => mutableView(t)!), valuesT: view.valuesT.map((t) => mutableView(t)!),
        });
        packedMatmul(m.o, out, 1, this.delta);
        addRmsNormRow(this.h, this.delta, norms.post.of(layer.post_attention_layernorm), this.sum, this.normed, 0, hidden, eps);
        packedMatmul(m.gate, this.normed, 1, this.gate);
        packedMatmul(m.up, this.normed, 1, this.up);
        siluMulRange(this.gate, this.up, this.act, this.act.length);
        packedMatmul(m.down, this.act, 1, this.delta);
        for (let d = 0; d < hidden; d++) this.h[d] = f32(this.sum[d]! + this.delta[d]!);
      }
    } finally {
      scratch.dispose();
    }
    rmsNormRow(this.h, 0, this.finalNorm.of(this.weights.norm), this.normed, 0, hidden, eps);
    return tf.tensor3d(packedMatmul(this.head, this.normed, 1) as Float32Array, [1, 1, this.head.rows]);
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
