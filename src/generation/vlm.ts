// What the generation loop needs from a model: embed a prompt (images merged in), run the decoder
// over new embeddings with a KV cache, and report its context window. Each architecture provides it.
import type { tf } from '../backend/index.ts';
import type { KVCache } from '../layers/kv-cache.ts';
import type { Idefics3Model } from '../models/idefics3/model.ts';
import type { HostInts, LlamaDecoder } from '../models/llama/model.ts';
import type { LlavaModel } from '../models/llava/model.ts';

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

/** A CausalVlm over a model's Llama decoder, given how the model embeds a prompt. */
function decoderVlm(
  model: { config: { text_config: { max_position_embeddings: number } }; text: LlamaDecoder; createCache(): KVCache[] },
  embed: (inputs: VlmPromptTensors) => tf.Tensor,
): CausalVlm {
  return {
    maxPositions: model.config.text_config.max_position_embeddings,
    createCache: () => model.createCache(),
    embed,
    decodeLast(inputsEmbeds, attentionMask, positionIds, cache) {
      return model.text.forward(
        { inputs_embeds: inputsEmbeds, attention_mask: attentionMask, position_ids: positionIds },
        { cache, lastOnly: true },
      );
    },
  };
}

/** Idefics3 / SmolVLM as a CausalVlm. */
export function idefics3Vlm(model: Idefics3Model): CausalVlm {
  return decoderVlm(model, (inputs) => {
    const embeds = model.text.embed(inputs.input_ids);
    if (!inputs.pixel_values) return embeds;
    const features = model.encodeImages(inputs.pixel_values, inputs.pixel_attention_mask);
    try {
      return model.mergeImageFeatures(inputs.input_ids, embeds, features);
    } finally {
      features.dispose();
      embeds.dispose();
    }
  });
}

/** LLaVA as a CausalVlm (pixel_values [n_images, C, H, W]). */
export function llavaVlm(model: LlavaModel): CausalVlm {
  return decoderVlm(model, (inputs) => model.embed(inputs.input_ids, inputs.pixel_values));
}
