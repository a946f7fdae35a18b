// Idefics3 / SmolVLM keys as mlx-vlm names them (mlx_vlm/models/idefics3 `Model.sanitize`): the
// language model's tree is `language_model.*` with its own `lm_head`; vision and connector lose
// the leading `model.` (docs/notes/mlx-quantization.md §8).
import type { MlxNaming } from '../checkpoint-layout.ts';

const TO_MLX: [string, string][] = [
  ['lm_head.', 'language_model.lm_head.'],
  ['model.text_model.', 'language_model.'],
  ['model.vision_model.', 'vision_model.'],
  ['model.connector.', 'connector.'],
];

function rename(key: string, pairs: [string, string][]): string | undefined {
  for (const [from, to] of pairs) if (key.startsWith(from)) return to + key.slice(from.length);
  return undefined;
}

// Inverse order matters: `language_model.lm_head.` before `language_model.`.
const TO_HF: [string, string][] = TO_MLX.map(([hf, mlx]): [string, string] => [mlx, hf]);

export const IDEFICS3_MLX_NAMES: MlxNaming = {
  mlx: (key) => rename(key, TO_MLX) ?? key,
  hf: (key) => rename(key, TO_HF),
};
