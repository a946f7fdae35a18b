// LLaVA keys as mlx-vlm names them: llava-hf's names (`vision_tower.vision_model.*`,
// `multi_modal_projector.*`, `language_model.model.*`, `language_model.lm_head.*`), which a
// checkpoint saved by transformers ≥ 4.52 (`model.vision_tower.…`) maps back to.
import { SAME_NAMES, type MlxNaming } from '../checkpoint-layout.ts';
import { LLAVA_HF_LAYOUT, LLAVA_NEW_LAYOUT, type LlavaKeyLayout } from './model.ts';

const PARTS = ['vision', 'projector', 'text', 'lmHead'] as const;

function renamer(from: LlavaKeyLayout, to: LlavaKeyLayout): (key: string) => string | undefined {
  return (key) => {
    for (const part of PARTS) {
      if (key.startsWith(`${from[part]}.`)) return to[part] + key.slice(from[part].length);
    }
    return undefined;
  };
}

export function llavaMlxNames(layout: LlavaKeyLayout): MlxNaming {
  if (layout !== LLAVA_NEW_LAYOUT) return SAME_NAMES;
  const toMlx = renamer(LLAVA_NEW_LAYOUT, LLAVA_HF_LAYOUT);
  return { mlx: (key) => toMlx(key) ?? key, hf: renamer(LLAVA_HF_LAYOUT, LLAVA_NEW_LAYOUT) };
}
