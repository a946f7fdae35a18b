// Llama decoder (transformers 4.47 modeling_llama.py: LlamaModel, LlamaDecoderLayer; eager attention,
// causal mask from _update_causal_mask). Takes inputs_embeds so multimodal models can merge image
// features first; runs with an optional per-layer KV cache and can compute logits for the last
// position only.
import { tf } from '../../backend/index.ts';
import { TfvlmError } from '../../errors.ts';
import { activation } from '../../layers/activations.ts';
import { attention, attentionRows, type AttentionOptions, type AttentionWeights } from '../../layers/attention.ts';
import { embed, type Embedding } from '../../layers/embedding.ts';
import type { KVCache } from '../../layers/kv-cache.ts';
import { createKVCaches } from '../../layers/preallocated-kv-cache.ts';
import { linear, linearFromCheckpoint, type Linear } from '../../layers/linear.ts';
import { causalMask } from '../../layers/masks.ts';
import { gatedMlp, type GatedMLP } from '../../layers/mlp.ts';
import { addRmsNorm, rmsNorm, type RMSNorm } from '../../layers/rms-norm.ts';
import { inverseFrequencies, rotaryTables } from '../../layers/rotary.ts';
import { attentionRecorder, type Capture } from '../capture.ts';
import { disposeTree, type WeightSource } from '../weights.ts';
import type { LlamaConfig } from './config.ts';
import { LlamaDecodeStep } from './decode-step.ts';
import { reportProgress } from '../../util/progress.ts';

export interface LlamaDecoderLayer {
  input_layernorm: RMSNorm;
  self_attn: AttentionWeights;
  post_attention_layernorm: RMSNorm;
  mlp: GatedMLP;
}

export interface LlamaWeights {
  embed_tokens: Embedding;
  layers: LlamaDecoderLayer[];
  norm: RMSNorm;
}

/** A LlamaModel under prefix (e.g. `model.text_model`): embeddings, decoder layers, final norm. */
export function llamaWeights(w: WeightSource, prefix: string, c: LlamaConfig): LlamaWeights {
  const act = activation(c.hidden_act);
  const [D, eps] = [c.hidden_size, c.rms_norm_eps];
  const qDim = c.num_attention_heads * c.head_dim;
  const kvDim = c.num_key_value_heads * c.head_dim;
  const embed_tokens = w.embedding(`${prefix}.embed_tokens.weight`, c.vocab_size, D);
  const layers = Array.from({ length: c.num_hidden_layers }, (_, i): LlamaDecoderLayer => {
    const p = `${prefix}.layers.${i}`;
    return {
      input_layernorm: w.rmsNorm(`${p}.input_layernorm`, D, eps),
      self_attn: {
        q: w.linear(`${p}.self_attn.q_proj`, D, qDim, c.attention_bias),
        k: w.linear(`${p}.self_attn.k_proj`, D, kvDim, c.attention_bias),
        v: w.linear(`${p}.self_attn.v_proj`, D, kvDim, c.attention_bias),
        o: w.linear(`${p}.self_attn.o_proj`, qDim, D, c.attention_bias),
      },
      post_attention_layernorm: w.rmsNorm(`${p}.post_attention_layernorm`, D, eps),
      mlp: {
        gate: w.linear(`${p}.mlp.gate_proj`, D, c.intermediate_size, c.mlp_bias),
        up: w.linear(`${p}.mlp.up_proj`, D, c.intermediate_size, c.mlp_bias),
        down: w.linear(`${p}.mlp.down_proj`, c.intermediate_size, D, c.mlp_bias),
        act,
      },
    };
  });
  return { embed_tokens, layers, norm: w.rmsNorm(`${prefix}.norm`, D, eps) };
}

/** Host copy of a [B, S] mask / id tensor or array. */
export type HostInts = tf.Tensor | ArrayLike<number>;

function hostInts(x: HostInts): ArrayLike<number> {
  return x instanceof tf.Tensor ? (x.dataSync() as ArrayLike<number>) : x;
}

export interface DecoderInputs {
  /** [B, T, hidden] — not disposed by the decoder. */
  inputs_embeds: tf.Tensor;
  /** 1 = attend, 0 = padding; [B, cached + T]. Omitted: attend to every position. */
  attention_mask?: HostInts;
  /** [B, T] RoPE positions. Omitted: cache offset + 0..T−1 in every row. */
  position_ids?: HostInts;
}

export interface DecoderOptions {
  /** One KVCache per layer (see createCache); updated in place. */
  cache?: KVCache[];
  /** Compute the final norm and logits for the last position only ([B, 1, V]). */
  lastOnly?: boolean;
  capture?: Capture;
  /** Capture name prefix for inputs_embeds / layers / norm (default 'text'). */
  captureAs?: string;
}

/**
 * One LlamaDecoderLayer: h + attention(norm(h)), then + mlp(norm(·)). The residual add and the norm
 * after it are one fused pass (addRmsNorm).
 */
export function decoderLayer(layer: LlamaDecoderLayer, h: tf.Tensor, attn: AttentionOptions): tf.Tensor {
  return tf.tidy(() => {
    const attended = attention(layer.self_attn, rmsNorm(layer.input_layernorm, h), attn);
    const { sum, normed } = addRmsNorm(layer.post_attention_layernorm, h, attended);
    return tf.add(sum, gatedMlp(layer.mlp, normed));
  });
}

/** decoderLayer for one new token of each of N sequences, h [N, 1, hidden], each over its own cache (attentionRows). */
export function decoderLayerRows(layer: LlamaDecoderLayer, h: tf.Tensor, attn: Parameters<typeof attentionRows>[2]): tf.Tensor {
  return tf.tidy(() => {
    const attended = attentionRows(layer.self_attn, rmsNorm(layer.input_layernorm, h), attn);
    const { sum, normed } = addRmsNorm(layer.post_attention_layernorm, h, attended);
    return tf.add(sum, gatedMlp(layer.mlp, normed));
  });
}

export class LlamaDecoder {
  private readonly invFreq: Float32Array;
  /** The packed one-token step (decode-step.ts); null when the weights do not allow it. */
  private decodeStep: LlamaDecodeStep | null | undefined;

  /** lmHead: the output projection; for tied embeddings a transposed copy of embed_tokens. */
  constructor(readonly config: LlamaConfig, readonly weights: LlamaWeights, readonly lmHead: Linear) {
    this.invFreq = inverseFrequencies({ dim: config.head_dim, rope_theta: config.rope_theta, rope_scaling: config.rope_scaling });
  }

  /**
   * lm_head tied to embed_tokens: the same packed matrix ([vocab, hidden] is the head's [out, in]),
   * or for float32 tensors a copy laid out once as [hidden, vocab].
   */
  static tiedHead(weights: LlamaWeights): Linear {
    const { packed, table, numEmbeddings, embeddingDim } = weights.embed_tokens;
    if (packed) return { packed, inFeatures: embeddingDim, outFeatures: numEmbeddings };
    return linearFromCheckpoint(tf.clone(table!));
  }

  createCache(capacity?: number): KVCache[] {
    return createKVCaches(this.config.num_hidden_layers, capacity);
  }

  embed(inputIds: tf.Tensor): tf.Tensor {
    return embed(this.weights.embed_tokens, inputIds);
  }

  /** Decoder layers + final norm + LM head → logits [B, T, V] (or [B, 1, V] with lastOnly). */
  forward(inputs: DecoderInputs, opts: DecoderOptions = {}): tf.Tensor {
    const c = this.config;
    const x = inputs.inputs_embeds;
    if (x.rank !== 3 || x.shape[2] !== c.hidden_size) {
      throw new TfvlmError(`inputs_embeds must be [B, T, ${c.hidden_size}], got [${x.shape}]`);
    }
    const [B, T] = x.shape as [number, number, number];
    const cache = opts.cache;
    if (cache && cache.length !== c.num_hidden_layers) {
      throw new TfvlmError(`cache has ${cache.length} layers, the decoder has ${c.num_hidden_layers}`);
    }
    const offset = cache?.[0]?.offset ?? 0;
    let positions: ArrayLike<number>;
    if (inputs.position_ids !== undefined) {
      positions = hostInts(inputs.position_ids);
      if (positions.length !== B * T) throw new TfvlmError(`position_ids must be [${B}, ${T}], got ${positions.length} values`);
    } else {
      positions = Int32Array.from({ length: B * T }, (_, i) => offset + (i % T));
    }
    const keyMask = inputs.attention_mask === undefined ? undefined : hostInts(inputs.attention_mask);
    const rotary = rotaryTables(this.invFreq, positions, B, T);
    const mask = causalMask({ batch: B, queryLen: T, offset, keyMask });
    const name = opts.captureAs ?? 'text';
    const capture = opts.capture;
    capture?.record(`${name}.inputs_embeds`, x);
    let h = x;
    try {
      if (B === 1 && T === 1 && cache && !mask && !capture) {
        this.decodeStep ??= LlamaDecodeStep.for(c, this.weights, this.lmHead) ?? null;
        if (this.decodeStep?.accepts(rotary, [cache])) return this.decodeStep.run(x, rotary, [cache]);
      }
      for (let i = 0; i < c.num_hidden_layers; i++) {
        const next = decoderLayer(this.weights.layers[i]!, h, {
          numHeads: c.num_attention_heads, numKeyValueHeads: c.num_key_value_heads, headDim: c.head_dim,
          rotary, mask, cache: cache?.[i], onWeights: attentionRecorder(capture, `${name}.layers.${i}`),
        });
        if (h !== x) h.dispose();
        h = next;
        capture?.record(`${name}.layers.${i}`, h);
        if (T > 1) reportProgress('prefill', i + 1, c.num_hidden_layers, 'layers');
      }
      const last = h;
      return tf.tidy(() => {
        const normed = rmsNorm(this.weights.norm, opts.lastOnly ? tf.slice(last, [0, T - 1, 0], [B, 1, c.hidden_size]) : last);
        capture?.record(`${name}.norm`, normed);
        const logits = linear(this.lmHead, normed);
        capture?.record('logits', logits);
        return logits;
      });
    } finally {
      if (h !== x) h.dispose();
      tf.dispose([rotary.cos, rotary.sin, ...(mask ? [mask] : [])]);
    }
  }

  /**
   * One new token for each of N sequences (continuous batching): x [N, 1, hidden] → logits
   * [N, 1, V]; row r continues the sequence whose per-layer caches are caches[r], at the position
   * they hold. The linears take the N rows in one pass over the weights, attention runs per row over
   * its own cache. On packed weights each row's logits are those forward() gives it alone.
   */
  forwardRows(x: tf.Tensor, caches: KVCache[][]): tf.Tensor {
    const c = this.config;
    const N = caches.length;
    if (x.rank !== 3 || x.shape[0] !== N || x.shape[1] !== 1 || x.shape[2] !== c.hidden_size) {
      throw new TfvlmError(`decoder rows: inputs_embeds must be [${N}, 1, ${c.hidden_size}] for ${N} caches, got [${x.shape}]`);
    }
    const positions = caches.map((cache, r) => {
      if (cache.length !== c.num_hidden_layers) throw new TfvlmError(`decoder rows: cache ${r} has ${cache.length} layers, the decoder has ${c.num_hidden_layers}`);
      return cache[0]?.offset ?? 0;
    });
    const rotary = rotaryTables(this.invFreq, positions, N, 1);
    let h = x;
    try {
      this.decodeStep ??= LlamaDecodeStep.for(c, this.weights, this.lmHead) ?? null;
      if (this.decodeStep?.accepts(rotary, caches)) return this.decodeStep.run(x, rotary, caches);
      for (let i = 0; i < c.num_hidden_layers; i++) {
        const next = decoderLayerRows(this.weights.layers[i]!, h, {
          numHeads: c.num_attention_heads, numKeyValueHeads: c.num_key_value_heads, headDim: c.head_dim,
          rotary, caches: caches.map((cache) => cache[i]!),
        });
        if (h !== x) h.dispose();
        h = next;
      }
      const last = h;
      return tf.tidy(() => linear(this.lmHead, rmsNorm(this.weights.norm, last)));
    } finally {
      if (h !== x) h.dispose();
      tf.dispose([rotary.cos, rotary.sin]);
    }
  }

  dispose(): void {
    disposeTree(this.weights);
    disposeTree(this.lmHead);
  }
}
