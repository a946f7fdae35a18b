// What every generative model here shares (Idefics3 / SmolVLM, LLaVA, a text-only Llama): a Llama
// decoder that reads token embeddings, for the image-text models with the image features merged at
// the image tokens. Each architecture says only how it embeds a prompt; the forward pass, the cache
// and the one-step decoding the generation loop needs (GenerativeModel) are this class's.
import { withComputeThreads, type tf } from '../backend/index.ts';
import type { KVCache } from '../layers/kv-cache.ts';
import type { Capture } from './capture.ts';
import type { HostInts, LlamaDecoder } from './llama/model.ts';
import type { WeightStore } from '../layers/weight-store.ts';
import { checkPromptFits } from './fit.ts';
import type { ParamSlot, WeightsResidence } from './weights.ts';

/** A prompt as tensors: ids, and the pixels of its images when it has any. */
export interface PromptTensors {
  /** int32 [B, T] */
  input_ids: tf.Tensor;
  /** Idefics3: float32 [B, N, C, H, W] tiles (all-zero tiles are padding); LLaVA: [n_images, C, H, W]. */
  pixel_values?: tf.Tensor;
  /** Idefics3: bool / number [B, N, H, W], 1 = real pixel. */
  pixel_attention_mask?: tf.Tensor;
}

export interface ModelInputs extends PromptTensors {
  /** [B, cached + T], 1 = attend. */
  attention_mask?: HostInts;
  /** [B, T] RoPE positions (default: cache offset + 0..T−1). */
  position_ids?: HostInts;
}

export interface ForwardOptions {
  capture?: Capture;
  /** Per-layer KV cache (model.createCache()); image features are merged only when it is empty. */
  cache?: KVCache[];
  /** Logits of the last position only. */
  lastOnly?: boolean;
}

/** What the generation loop needs from a model. */
export interface GenerativeModel {
  /** Positions the decoder was trained for (text_config.max_position_embeddings). */
  readonly maxPositions: number;
  /** One KV cache per layer; `capacity`: positions it will hold when known (a one-shot generate: prompt + new tokens). */
  createCache(capacity?: number): KVCache[];
  /** Token embeddings [B, T, hidden] with the image features merged at the image tokens. */
  embed(inputs: PromptTensors): tf.Tensor;
  /** Decoder over new embeddings; logits of the last position [B, 1, vocab]. */
  decodeLast(inputsEmbeds: tf.Tensor, attentionMask: HostInts | undefined, positionIds: HostInts, cache: KVCache[]): tf.Tensor;
  /**
   * One new token for each of N sequences, each over its own per-layer caches (continuous
   * batching): inputsEmbeds [N, 1, hidden] → logits [N, 1, vocab].
   */
  decodeRows(inputsEmbeds: tf.Tensor, caches: KVCache[][]): tf.Tensor;
  /** Throws a named error when a prompt's KV cache and activations cannot fit where they live. */
  checkPromptFits(p: { batch: number; promptTokens: number; cachedTokens: number; newTokens: number }): void;
}

/** What loading leaves besides the layers: where the tensors are, and the arenas of stored weights. */
export interface LoadedParts {
  /** Every checkpoint tensor and where the model holds it (float32 residence: training, saving). */
  slots: ParamSlot[];
  /** Arenas holding the weight matrices in their checkpoint precision ('stored' residence). */
  store?: WeightStore;
}

export abstract class DecoderModel implements GenerativeModel {
  readonly slots: ParamSlot[];
  readonly store?: WeightStore;

  /** @param text the language model */
  constructor(readonly text: LlamaDecoder, parts: LoadedParts = { slots: [] }) {
    this.slots = parts.slots;
    this.store = parts.store;
  }

  /** Where the weight matrices live: in arenas at their checkpoint precision, or float32 tfjs tensors. */
  get residence(): WeightsResidence {
    return this.store ? 'stored' : 'float32';
  }

  get maxPositions(): number {
    return this.text.config.max_position_embeddings;
  }

  createCache(capacity?: number): KVCache[] {
    return this.text.createCache(capacity);
  }

  checkPromptFits(p: { batch: number; promptTokens: number; cachedTokens: number; newTokens: number }): void {
    checkPromptFits(this.text.config, p);
  }

  /** Token embeddings [B, T, hidden], the image features merged in when pixel_values are given. */
  abstract embed(inputs: PromptTensors, capture?: Capture): tf.Tensor;

  decodeLast(inputsEmbeds: tf.Tensor, attentionMask: HostInts | undefined, positionIds: HostInts, cache: KVCache[]): tf.Tensor {
    return this.onTextThreads(() =>
      this.text.forward({ inputs_embeds: inputsEmbeds, attention_mask: attentionMask, position_ids: positionIds }, { cache, lastOnly: true }));
  }

  decodeRows(inputsEmbeds: tf.Tensor, caches: KVCache[][]): tf.Tensor {
    return this.onTextThreads(() => this.text.forwardRows(inputsEmbeds, caches));
  }

  /**
   * Runs the decoder. With stored weights its matmuls run on tfvlm's kernel threads and the tfjs ops
   * left (attention over the prompt, norms: a few percent of the work) on one thread: tfjs's second
   * thread spins after each op on the core the kernel worker needs (81-token prefill here: the
   * linears 49 → 56 GFLOP/s, the prefill ~560 → ~500 ms). The vision encoder, whose attention is a
   * fifth of its work, keeps every thread.
   */
  private onTextThreads<T>(fn: () => T): T {
    return this.store ? withComputeThreads(1, fn) : fn();
  }

  /** Full forward: logits [B, T, vocab] (or [B, 1, vocab] with lastOnly); images only on a cache's first call. */
  forward(inputs: ModelInputs, opts: ForwardOptions = {}): { logits: tf.Tensor } {
    const firstCall = (opts.cache?.[0]?.offset ?? 0) === 0;
    const prompt = firstCall ? inputs : { input_ids: inputs.input_ids };
    const embeds = this.embed(prompt, opts.capture);
    try {
      const { attention_mask, position_ids } = inputs;
      return { logits: this.onTextThreads(() => this.text.forward({ inputs_embeds: embeds, attention_mask, position_ids }, opts)) };
    } finally {
      embeds.dispose();
    }
  }

  /** Frees the model's tfjs tensors (the arenas are freed by dispose). */
  protected abstract disposeTensors(): void;

  dispose(): void {
    this.disposeTensors();
    this.store?.dispose();
  }
}
