// How a model is loaded: where its weight matrices live, whether they are quantized as they load,
// and who hears about the progress.
import { readsSync } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { MLX_SUPPORTED_GROUP_SIZES } from '../quant/mlx-affine.ts';
import { parseQuantizationConfig } from '../quant/mlx-config.ts';
import { quantizationFor } from '../quant/recipe.ts';
import type { ProgressListener } from '../util/progress.ts';
import type { MlxNaming } from './checkpoint-layout.ts';
import type { LoadWeightsOptions } from './load-weights.ts';
import type { WeightsResidence } from './weights.ts';

/**
 * What the weight matrices run as: 'auto' as stored (floats in their dtype, or the MLX quantization
 * of a quantized checkpoint); 'q8' / 'q4' quantized while loading with MLX's affine quantizer: the
 * language model's linears and embeddings and the projector at 8 / 4 bits, the vision tower's
 * linears at 8 (quant/recipe.ts).
 */
export type LoadDType = 'auto' | 'q8' | 'q4';
export const LOAD_DTYPES: readonly LoadDType[] = ['auto', 'q8', 'q4'];
/** mlx-lm's and mlx-vlm's default group size. */
export const DEFAULT_GROUP_SIZE = 64;

export interface ModelLoadOptions {
  /**
   * 'stored' (default): weight matrices stay in the checkpoint's precision (f32, bf16, f16, or
   * quantized) in kernel arenas outside the tfjs heap, run by tfvlm's wasm kernels — inference at any
   * size the machine's memory holds. 'float32': widened into tfjs tensors — what training
   * differentiates, and the reference path (quantized matrices are dequantized). TFVLM_WEIGHTS sets the default.
   * On the webgpu backend matrices are always 'float32' (on the GPU): the wasm kernels read their
   * input synchronously, which webgpu cannot give in Node.
   */
  weights?: WeightsResidence;
  /** Quantize while loading ('q8', 'q4'), or run the weights as stored ('auto', the default). */
  dtype?: LoadDType;
  /** Values per scale and bias when quantizing at load: 32, 64 (default) or 128. */
  groupSize?: number;
  /** Receives 'load' progress (bytes read). */
  onProgress?: ProgressListener;
}

export const MODEL_LOAD_OPTION_KEYS = ['weights', 'dtype', 'groupSize', 'onProgress'] as const;

/** The residence a load uses: the option, else TFVLM_WEIGHTS, else 'stored'. */
export function resolveResidence(weights: unknown, env: NodeJS.ProcessEnv = process.env): WeightsResidence {
  const chosen = weights ?? (env.TFVLM_WEIGHTS || undefined) ?? 'stored';
  if (chosen !== 'stored' && chosen !== 'float32') {
    const from = weights !== undefined ? 'weights' : 'TFVLM_WEIGHTS';
    throw new TfvlmError(`${from} must be 'stored' or 'float32', got '${String(chosen)}'`);
  }
  return chosen;
}

/** Checks dtype and groupSize; returns the quantization a load applies, if any. */
export function resolveLoadDType(options: Pick<ModelLoadOptions, 'dtype' | 'groupSize'>): { bits: number; groupSize: number } | undefined {
  const dtype = options.dtype ?? 'auto';
  if (!LOAD_DTYPES.includes(dtype)) throw new TfvlmError(`dtype must be one of ${LOAD_DTYPES.join(', ')}, got '${String(dtype)}'`);
  const groupSize = options.groupSize ?? DEFAULT_GROUP_SIZE;
  if (!MLX_SUPPORTED_GROUP_SIZES.includes(groupSize)) {
    throw new TfvlmError(`groupSize ${String(groupSize)} is not supported (32, 64 or 128)`);
  }
  if (dtype === 'auto') {
    if (options.groupSize !== undefined) throw new TfvlmError(`groupSize applies only with dtype 'q8' or 'q4'`);
    return undefined;
  }
  return { bits: dtype === 'q8' ? 8 : 4, groupSize };
}

/** The loadWeights options of a model load (everything but the architecture's ignore rule). */
export function weightLoadOptions(options: ModelLoadOptions, rawConfig: unknown, mlxNames?: MlxNaming): LoadWeightsOptions {
  const q = resolveLoadDType(options);
  const residence = resolveResidence(options.weights);
  return {
    weights: readsSync() ? residence : 'float32',
    onProgress: options.onProgress,
    mlxNames,
    quantization: parseQuantizationConfig(rawConfig),
    quantize: q && { quantizationOf: (path, kind, cols) => quantizationFor(path, kind, cols, q) },
  };
}
