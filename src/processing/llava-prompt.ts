// LLaVA prompt expansion: each <image> marker becomes one <image> token per image feature.
// transformers models/llava/processing_llava.py (LlavaProcessor.__call__).
import { host } from '../io/host.ts';
import { TfvlmError } from '../errors.ts';

export interface LlavaPromptConfig {
  image_token: string;
  /** Vision patch size; null in old processor configs, where transformers leaves expansion to the model. */
  patch_size: number | null;
  num_additional_image_tokens: number;
  vision_feature_select_strategy: string | null;
}

/** Number of <image> tokens per image: (H/patch)·(W/patch) + num_additional_image_tokens, minus the CLS row when
 *  the strategy is "default". H, W are the processed pixel_values size (the crop). */
export function llavaImageTokenCount(height: number, width: number, cfg: LlavaPromptConfig): number {
  if (cfg.patch_size === null || cfg.vision_feature_select_strategy === null) {
    throw new TfvlmError('llava prompt: processor_config.json sets no "patch_size"/"vision_feature_select_strategy", so the image token count is unknown');
  }
  if (!(Number.isInteger(height) && Number.isInteger(width) && height > 0 && width > 0)) {
    throw new TfvlmError(`llava prompt: image size must be positive integers, got ${height}x${width}`);
  }
  let n = Math.floor(height / cfg.patch_size) * Math.floor(width / cfg.patch_size) + cfg.num_additional_image_tokens;
  if (cfg.vision_feature_select_strategy === 'default') n -= 1;
  return n;
}

/**
 * Expands every image marker to `llavaImageTokenCount` tokens (transformers uses the size of the first
 * pixel_values image for all). `numImages` must equal the number of markers. With a legacy processor config
 * (no patch_size or strategy) the prompt is returned unchanged, as transformers 4.47 does.
 */
export function expandLlavaPrompt(
  prompt: string,
  numImages: number,
  pixelSize: { height: number; width: number },
  cfg: LlavaPromptConfig,
): string {
  const markers = prompt.split(cfg.image_token).length - 1;
  if (markers !== numImages) {
    throw new TfvlmError(`llava prompt: the prompt has ${markers} ${cfg.image_token} marker(s) but ${numImages} image(s) were given; they must be equal`);
  }
  if (numImages === 0 || cfg.patch_size === null || cfg.vision_feature_select_strategy === null) return prompt;
  const n = llavaImageTokenCount(pixelSize.height, pixelSize.width, cfg);
  return prompt.replaceAll(cfg.image_token, cfg.image_token.repeat(n));
}

/** Reads processor_config.json (LlavaProcessor arguments; defaults as in its __init__; missing file = legacy). */
export async function loadLlavaPromptConfig(dir: string, extraSpecialTokens: Record<string, string> = {}): Promise<LlavaPromptConfig> {
  const read = async (name: string): Promise<Record<string, any>> => {
    const file = host().join(dir, name);
    let text: string;
    try {
      text = await host().readTextAsync(file);
    } catch {
      return {};
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new TfvlmError(`${file}: not valid JSON (${(err as Error).message})`);
    }
  };
  const p = await read('processor_config.json');
  const file = host().join(dir, 'processor_config.json');
  const patch = p.patch_size ?? null;
  if (patch !== null && !(Number.isInteger(patch) && patch > 0)) throw new TfvlmError(`${file}: field "patch_size" must be a positive integer`);
  const extra = p.num_additional_image_tokens ?? 0;
  if (!(Number.isInteger(extra) && extra >= 0)) throw new TfvlmError(`${file}: field "num_additional_image_tokens" must be a non-negative integer`);
  const strategy = p.vision_feature_select_strategy ?? null;
  if (strategy !== null && strategy !== 'default' && strategy !== 'full') {
    throw new TfvlmError(`${file}: field "vision_feature_select_strategy" must be "default" or "full", got ${JSON.stringify(strategy)}`);
  }
  return {
    image_token: extraSpecialTokens.image_token ?? p.image_token ?? '<image>',
    patch_size: patch,
    num_additional_image_tokens: extra,
    vision_feature_select_strategy: strategy,
  };
}

/**
 * The LLaVA-1.5 conversation format, for llava checkpoints that ship no chat template:
 * `USER: <image>\n… ASSISTANT: answer</s>USER: … ASSISTANT:` (images first in a turn, system
 * text as a plain prefix), as llava-hf's prompts are written.
 */
export const LLAVA_15_CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'system' %}" +
  "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] + ' ' }}{% endif %}{% endfor %}" +
  "{% else %}{{ message['role'].upper() + ': ' }}" +
  "{% for c in message['content'] %}{% if c['type'] == 'image' %}{{ '<image>\\n' }}{% endif %}{% endfor %}" +
  "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}" +
  "{% if message['role'] == 'assistant' %}{{ eos_token }}{% else %}{{ ' ' }}{% endif %}{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";
