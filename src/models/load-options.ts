// How a model is loaded: where its weight matrices live, and who hears about the progress.
import { TfvlmError } from '../errors.ts';
import type { ProgressListener } from '../util/progress.ts';
import type { WeightsResidence } from './weights.ts';

export interface ModelLoadOptions {
  /**
   * 'stored' (default): weight matrices stay in the checkpoint's precision (f32, bf16, f16) in kernel
   * arenas outside the tfjs heap, run by tfvlm's wasm kernels — inference at any size the machine's
   * memory holds. 'float32': widened into tfjs tensors — what training differentiates, and the
   * reference path. TFVLM_WEIGHTS sets the default.
   */
  weights?: WeightsResidence;
  /** Receives 'load' progress (bytes read). */
  onProgress?: ProgressListener;
}

export const MODEL_LOAD_OPTION_KEYS = ['weights', 'onProgress'] as const;

/** The residence a load uses: the option, else TFVLM_WEIGHTS, else 'stored'. */
export function resolveResidence(weights: unknown, env: NodeJS.ProcessEnv = process.env): WeightsResidence {
  const chosen = weights ?? (env.TFVLM_WEIGHTS || undefined) ?? 'stored';
  if (chosen !== 'stored' && chosen !== 'float32') {
    const from = weights !== undefined ? 'weights' : 'TFVLM_WEIGHTS';
    throw new TfvlmError(`${from} must be 'stored' or 'float32', got '${String(chosen)}'`);
  }
  return chosen;
}
