// SigLIP-style vision tower config (HF field names). Defaults differ per family, so the caller
// passes them: Idefics3VisionConfig (configuration_idefics3.py) vs SiglipVisionConfig.
import { ConfigReader } from '../config-fields.ts';
import { activation } from '../../layers/activations.ts';

export interface SiglipVisionConfig {
  model_type: string;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_channels: number;
  image_size: number;
  patch_size: number;
  hidden_act: string;
  layer_norm_eps: number;
  /** hidden_size / num_attention_heads */
  head_dim: number;
  /**
   * floor(image_size / patch_size): a stride-patch_size conv drops the pixels past the last whole patch
   * (SmolVLM-Instruct and SmolVLM2-2.2B: patch 14 on 384-pixel tiles → 27 per side).
   */
  num_patches_per_side: number;
}

export type SiglipVisionDefaults = Omit<SiglipVisionConfig, 'head_dim' | 'num_patches_per_side'>;

export const SIGLIP_VISION_DEFAULTS: SiglipVisionDefaults = {
  model_type: 'siglip_vision_model', hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12,
  num_attention_heads: 12, num_channels: 3, image_size: 224, patch_size: 16, hidden_act: 'gelu_pytorch_tanh',
  layer_norm_eps: 1e-6,
};

export function parseSiglipVisionConfig(raw: unknown, defaults: SiglipVisionDefaults, where = 'vision_config',
  source = 'config.json'): SiglipVisionConfig {
  const r = ConfigReader.from(raw ?? {}, where, source);
  const hidden_size = r.positiveInt('hidden_size', defaults.hidden_size);
  const num_attention_heads = r.positiveInt('num_attention_heads', defaults.num_attention_heads);
  if (hidden_size % num_attention_heads !== 0) {
    r.fail('num_attention_heads', `must divide hidden_size (${hidden_size})`, num_attention_heads);
  }
  const image_size = r.positiveInt('image_size', defaults.image_size);
  const patch_size = r.positiveInt('patch_size', defaults.patch_size);
  if (patch_size > image_size) r.fail('patch_size', `must be at most image_size (${image_size})`, patch_size);
  const hidden_act = r.string('hidden_act', defaults.hidden_act);
  activation(hidden_act, `${source}: ${r.path('hidden_act')}`);
  return {
    model_type: r.string('model_type', defaults.model_type),
    hidden_size,
    intermediate_size: r.positiveInt('intermediate_size', defaults.intermediate_size),
    num_hidden_layers: r.positiveInt('num_hidden_layers', defaults.num_hidden_layers),
    num_attention_heads,
    num_channels: r.positiveInt('num_channels', defaults.num_channels),
    image_size,
    patch_size,
    hidden_act,
    layer_norm_eps: r.positiveNumber('layer_norm_eps', defaults.layer_norm_eps),
    head_dim: hidden_size / num_attention_heads,
    num_patches_per_side: Math.floor(image_size / patch_size),
  };
}
