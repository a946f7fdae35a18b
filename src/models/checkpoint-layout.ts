// How a checkpoint stores the tensors a model's build function asks for by their transformers names:
// - under those names, or under MLX's tree names (mlx-vlm saves idefics3 as `language_model.*`,
//   `vision_model.*`, `connector.*`; docs/notes/mlx-quantization.md §8), with patch convolutions
//   as torch's [O, I, kH, kW] or MLX's [O, kH, kW, I];
// - each weight matrix as floats, or quantized in MLX's affine format: `.weight` uint32 codes,
//   `.scales` and `.biases`. As mlx-vlm loads, a matrix is quantized iff its `.scales` is stored;
//   config.json's `quantization` block says with which bits and group size.
import { TfvlmError } from '../errors.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { checkQuantization, type MlxQuantization } from '../quant/mlx-affine.ts';
import type { QuantizationLookup } from '../quant/mlx-config.ts';
import type { MatrixKey, WeightSpec } from './weights.ts';

/** transformers key ↔ the key MLX's tree gives it (identity for architectures MLX does not rename). */
export interface MlxNaming {
  mlx(hfKey: string): string;
  /** The inverse, for keys of an MLX-named checkpoint (undefined when it names no transformers key). */
  hf(mlxKey: string): string | undefined;
}

export const SAME_NAMES: MlxNaming = { mlx: (key) => key, hf: (key) => key };

export interface CheckpointLayout {
  /** The stored name of a transformers key. */
  name(hfKey: string): string;
  /** The transformers key of a stored name. */
  hfName(stored: string): string | undefined;
  /** The MLX module path of a transformers weight key (what quantization blocks and predicates name). */
  mlxPath(hfKey: string): string;
  /** Whether names are MLX's (for the per-layer lookup of the quantization block, which uses MLX paths). */
  mlxNames: boolean;
  /** The stored quantization of a matrix, or undefined when it is stored as floats. */
  quantization(m: MatrixKey): MlxQuantization | undefined;
  /** Whether conv weights are stored [O, kH, kW, I] (MLX) instead of [O, I, kH, kW]. */
  convChannelsLast(m: MatrixKey): boolean;
}

/** `a.b.weight` → `a.b` (the module path a matrix's `.scales` / `.biases` hang off). */
export function modulePath(weightKey: string): string {
  return weightKey.endsWith('.weight') ? weightKey.slice(0, -'.weight'.length) : weightKey;
}

/**
 * The layout of `checkpoint` for a build whose keys are `spec`: transformers names if any of them
 * is stored (a weight or its `.scales`), else `mlxName`'s.
 */
export function checkpointLayout(checkpoint: Checkpoint, spec: WeightSpec, mlxName: MlxNaming,
  quantization: QuantizationLookup): CheckpointLayout {
  const present = (name: (k: string) => string) =>
    [...spec.keys()].some((k) => checkpoint.has(name(k)) || checkpoint.has(`${modulePath(name(k))}.scales`));
  const mlxNames = !present(SAME_NAMES.mlx) && present(mlxName.mlx);
  const naming = mlxNames ? mlxName : SAME_NAMES;
  const name = naming.mlx;
  const mlxPath = (hfKey: string) => modulePath(mlxName.mlx(hfKey));
  return {
    name,
    hfName: naming.hf,
    mlxPath,
    mlxNames,
    quantization(m) {
      const stored = modulePath(name(m.key));
      if (!checkpoint.has(`${stored}.scales`)) return undefined;
      // The per-layer lookup uses MLX module paths, which are the transformers ones renamed.
      const q = quantization(mlxPath(m.key));
      if (!q) {
        throw new TfvlmError(`${checkpoint.source}: '${stored}.scales' is stored but config.json has no quantization for '${mlxPath(m.key)}'`);
      }
      checkQuantization(q, m.cols, `${checkpoint.source}: ${stored}`);
      if (m.kind === 'conv' || m.kind === 'packed') {
        throw new TfvlmError(`${checkpoint.source}: '${stored}' is quantized, which tfvlm supports for linears and embeddings only`);
      }
      return q;
    },
    convChannelsLast(m) {
      if (!m.conv || !checkpoint.has(name(m.key))) return false;
      const shape = checkpoint.entry(name(m.key)).shape;
      const { out, in: channels, kernel } = m.conv;
      return shape.length === 4 && shape[0] === out && shape[1] === kernel && shape[2] === kernel && shape[3] === channels
        && !(shape[1] === channels && shape[3] === kernel);
    },
  };
}

/** What a stored tensor must be: its shape, and floats or uint32 codes. */
export interface ExpectedTensor {
  shape: number[];
  kind: 'float' | 'codes';
}

/** Every stored key the build reads, with its expected shape: the spec renamed, quantized matrices as codes + scales + biases. */
export function expectedTensors(spec: WeightSpec, matrices: MatrixKey[], layout: CheckpointLayout): Map<string, ExpectedTensor> {
  const out = new Map<string, ExpectedTensor>();
  const quantized = new Map<string, { m: MatrixKey; q: MlxQuantization }>();
  for (const m of matrices) {
    const q = layout.quantization(m);
    if (q) quantized.set(m.key, { m, q });
  }
  for (const [key, shape] of spec) {
    const stored = layout.name(key);
    const hit = quantized.get(key);
    if (hit) {
      const { q } = hit;
      const rows = shape[0]!; // a matrix: [rows, ...]
      const cols = shape.slice(1).reduce((a, b) => a * b, 1);
      out.set(stored, { shape: [rows, (cols * q.bits) / 32], kind: 'codes' });
      out.set(`${modulePath(stored)}.scales`, { shape: [rows, cols / q.groupSize], kind: 'float' });
      out.set(`${modulePath(stored)}.biases`, { shape: [rows, cols / q.groupSize], kind: 'float' });
      continue;
    }
    const m = matrices.find((x) => x.key === key && x.conv);
    // A conv weight [out, in, k, k], stored channels-last as [out, k, k, in].
    const convShape = m && layout.convChannelsLast(m) ? [shape[0]!, shape[2]!, shape[3]!, shape[1]!] : shape;
    out.set(stored, { shape: convShape, kind: 'float' });
  }
  return out;
}
