// Which layers mlx-vlm quantizes when it converts a model (mlx_vlm/utils.py, docs/notes/mlx-quantization.md
// §7): every module with `to_quantized` (Linear, Embedding; never Conv2d) whose rows are a whole
// number of groups, except those under a vision or audio tower, which stay in the model's dtype.
import type { MlxQuantization } from './mlx-affine.ts';

/** mlx-vlm's skip_multimodal_module: a substring test on the MLX module path. */
const SKIPPED_TOWERS = ['vision_model', 'vision_tower', 'audio_model', 'audio_tower', 'vl_connector', 'sam_model', 'code_predictor'];

/** What kind of module a weight belongs to, as far as quantization cares. */
export type QuantizableKind = 'linear' | 'embedding' | 'conv' | 'packed';

/** Whether mlx-vlm would quantize the module at `mlxPath` (a `kind` with rows of `cols` values) with `q`. */
export function mlxVlmQuantizes(mlxPath: string, kind: QuantizableKind, cols: number, q: MlxQuantization): boolean {
  if (kind !== 'linear' && kind !== 'embedding') return false;
  if (SKIPPED_TOWERS.some((t) => mlxPath.includes(t))) return false;
  return cols % q.groupSize === 0;
}
