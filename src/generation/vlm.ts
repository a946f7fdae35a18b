// What the generation loop needs from a model: embed a prompt (images merged in), run the decoder
// over new embeddings with a KV cache, and report its context window. Each architecture provides it.
import type { tf } from '../backend/index.ts';
import type { KVCache } from '../layers/kv-cache.ts';
import type { Idefics3Model } from '../models/idefics3/model.ts';
import type { HostInts } from '../models/llama/model.ts';

export interface VlmPromptTensors {
  /** int32 [B, T] */
  input_ids: tf.Tensor;
  pixel_values?: tf.Tensor;
  pixel_attention_mask?: tf.Tensor;
}

export interface CausalVlm {
  /** Positions the decoder was trained for (text_config.max_position_embeddings). */
  readonly maxPositions: number;
  createCache(): KVCache[];
  /** Token embeddings [B, T, hidden] with the image features merged at the image tokens. */
  embed(inputs: VlmPromptTensors): tf.Tensor;
  /** Decoder over new embeddings; logits of the last position [B, 1, vocab]. */
  decodeLast(inputsEmbeds: tf.Tensor, attentionMask: HostInts | undefined, positionIds: HostInts, cache: KVCache[]): tf.Tensor;
}

/** Idefics3 / SmolVLM as a CausalVlm. */
export function idefics3Vlm(model: Idefics3Model): CausalVlm {
  return {
    maxPositions: model.config.text_config.max_position_embeddings,
    createCache: () => model.createCache(),
    embed(inputs) {
      const embeds = model.text.embed(inputs.input_ids);
      if (!inputs.pixel_values) return embeds;
      const features = model.encodeImages(inputs.pixel_values, inputs.pixel_attention_mask);
      try {
        return model.mergeImageFeatures(inputs.input_ids, embeds, features);
      } finally {
        features.dispose();
        embeds.dispose();
      }
    },
    decodeLast(inputsEmbeds, attentionMask, positionIds, cache) {
      return model.text.forward(
        { inputs_embeds: inputsEmbeds, attention_mask: attentionMask, position_ids: positionIds },
        { cache, lastOnly: true },
      );
    },
  };
}
