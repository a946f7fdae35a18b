// Which layers tfvlm quantizes, and with what, when asked for B bits (`--dtype q8|q4`, `tfvlm
// quantize --bits B`). mlx-vlm (mlx_vlm/utils.py, docs/notes/mlx-quantization.md §7) quantizes
// every module with `to_quantized` (Linear, Embedding; never Conv2d) whose rows are whole groups,
// except under a vision or audio tower. tfvlm quantizes the vision tower's linears too, always at
// 8 bits: it is a third of a SmolVLM-256M and 0.6 GB of a LLaVA-1.5-7B in 16 bits, 8-bit codes
// halve that for a vision tile no slower than bf16, and its features move less than the language
// model's at 4 bits (bench/quality.ts). mlx-vlm loads such files as they are: a layer is quantized
// iff its `.scales` is stored, with per-layer parameters from config.json.
import type { MlxQuantization } from './mlx-affine.ts';

/** What kind of module a weight belongs to, as far as quantization cares. */
export type QuantizableKind = 'linear' | 'embedding' | 'conv' | 'packed';

/** mlx-vlm's skip_multimodal_module: a substring test on the MLX module path. */
const TOWERS = ['vision_model', 'vision_tower', 'audio_model', 'audio_tower', 'vl_connector', 'sam_model', 'code_predictor'];
const VISION = ['vision_model', 'vision_tower'];

/** Bits of the vision tower's linears whatever the language model gets. */
export const VISION_BITS = 8;

/** The quantization of the module at `mlxPath` (a `kind` with rows of `cols` values) when `requested` is asked for; undefined: stays float. */
export function quantizationFor(mlxPath: string, kind: QuantizableKind, cols: number, requested: MlxQuantization): MlxQuantization | undefined {
  if (kind === 'conv' || kind === 'packed') return undefined;
  if (cols % requested.groupSize !== 0) return undefined;
  if (VISION.some((t) => mlxPath.includes(t))) {
    return kind === 'linear' ? { bits: Math.max(VISION_BITS, requested.bits), groupSize: requested.groupSize } : undefined;
  }
  if (TOWERS.some((t) => mlxPath.includes(t))) return undefined;
  return requested;
}
