// LlamaForCausalLM (transformers modeling_llama.py): a text-only Llama checkpoint (SmolLM2, Vicuna,
// TinyLlama, …) on the same decoder the image-text models use: `model.embed_tokens`, `model.layers.*`,
// `model.norm`, and `lm_head` (tied to embed_tokens when tie_word_embeddings).
import type { tf } from '../../backend/index.ts';
import { TfvlmError } from '../../errors.ts';
import { Checkpoint } from '../../io/checkpoint.ts';
import type { Capture } from '../capture.ts';
import { DecoderModel, type LoadedParts, type PromptTensors } from '../decoder-model.ts';
import { checkModelFits } from '../fit.ts';
import { weightLoadOptions, type ModelLoadOptions } from '../load-options.ts';
import { readConfigJson } from '../read-config.ts';
import { loadWeights } from '../load-weights.ts';
import type { WeightSource } from '../weights.ts';
import { parseLlamaConfig, type LlamaConfig } from './config.ts';
import { LlamaDecoder, llamaWeights } from './model.ts';

/** A LlamaForCausalLM's weights, every key as transformers saves them. */
export function llamaCausalLMWeights(w: WeightSource, c: LlamaConfig) {
  return {
    text: llamaWeights(w, 'model', c),
    lmHead: c.tie_word_embeddings ? undefined : w.linear('lm_head', c.hidden_size, c.vocab_size, false),
  };
}

export class LlamaForCausalLM extends DecoderModel {
  constructor(readonly config: LlamaConfig, text: LlamaDecoder, parts?: LoadedParts) {
    super(text, parts);
  }

  static async load(dir: string, options: ModelLoadOptions = {}): Promise<LlamaForCausalLM> {
    const { raw, path } = readConfigJson(dir);
    const config = parseLlamaConfig(raw, '', path);
    const checkpoint = Checkpoint.open(dir);
    try {
      const build = (source: WeightSource) => llamaCausalLMWeights(source, config);
      const load = weightLoadOptions(options, raw);
      checkModelFits(checkpoint, build, load, config);
      const { weights: w, slots, store } = loadWeights(checkpoint, build, {
        ...load,
        ignore: (key) => key.endsWith('.rotary_emb.inv_freq') || (config.tie_word_embeddings && /^lm_head\.(weight|scales|biases)$/.test(key)),
      });
      return new LlamaForCausalLM(config, new LlamaDecoder(config, w.text, w.lmHead ?? LlamaDecoder.tiedHead(w.text)), { slots, store });
    } finally {
      checkpoint.close();
    }
  }

  /** Token embeddings [B, T, hidden]; a text-only model has no image features to merge. */
  embed(inputs: PromptTensors, _capture?: Capture): tf.Tensor {
    if (inputs.pixel_values) throw new TfvlmError('a text-only Llama model (LlamaForCausalLM) takes no images');
    if (inputs.input_ids.rank !== 2) throw new TfvlmError(`input_ids must be [B, T], got [${inputs.input_ids.shape}]`);
    return this.text.embed(inputs.input_ids);
  }

  protected disposeTensors(): void {
    this.text.dispose();
  }
}
