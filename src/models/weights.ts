// Checkpoint → tensors, addressed by checkpoint key. Each architecture declares the keys and
// shapes it needs (a WeightSpec derived from its config); the whole checkpoint is checked against
// that spec before anything is read, and every problem (missing / unexpected / wrong shape / non-float)
// goes into one TfvlmError.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { linearFromCheckpoint, type Linear } from '../layers/linear.ts';
import type { LayerNorm } from '../layers/layer-norm.ts';
import type { RMSNorm } from '../layers/rms-norm.ts';

/** checkpoint key → expected shape, in a stable order. */
export type WeightSpec = Map<string, number[]>;

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);
const MAX_LISTED = 20;

export interface WeightLoaderOptions {
  /** Checkpoint keys that may be present without being used (e.g. a stored lm_head when tied). */
  ignore?: (key: string) => boolean;
  /** Names the checkpoint in messages. */
  source?: string;
}

/** Adds the keys of a Linear (`prefix.weight` [out, in], optional `prefix.bias` [out]). */
export function specLinear(spec: WeightSpec, prefix: string, inFeatures: number, outFeatures: number, bias: boolean): void {
  spec.set(`${prefix}.weight`, [outFeatures, inFeatures]);
  if (bias) spec.set(`${prefix}.bias`, [outFeatures]);
}

export function specLayerNorm(spec: WeightSpec, prefix: string, dim: number): void {
  spec.set(`${prefix}.weight`, [dim]);
  spec.set(`${prefix}.bias`, [dim]);
}

export function specRMSNorm(spec: WeightSpec, prefix: string, dim: number): void {
  spec.set(`${prefix}.weight`, [dim]);
}

function listed(kind: string, items: string[]): string {
  const shown = items.slice(0, MAX_LISTED).map((s) => `    ${s}`).join('\n');
  const more = items.length > MAX_LISTED ? `\n    … and ${items.length - MAX_LISTED} more` : '';
  return `  ${kind} (${items.length}):\n${shown}${more}`;
}

export class WeightLoader {
  private readonly source: string;

  private constructor(private readonly checkpoint: Checkpoint, private readonly spec: WeightSpec, source: string) {
    this.source = source;
  }

  /** Validates the checkpoint against spec; throws one TfvlmError listing every problem. */
  static open(checkpoint: Checkpoint, spec: WeightSpec, options: WeightLoaderOptions = {}): WeightLoader {
    const source = options.source ?? checkpoint.source;
    const missing: string[] = [];
    const wrongShape: string[] = [];
    const wrongDtype: string[] = [];
    for (const [key, shape] of spec) {
      if (!checkpoint.has(key)) {
        missing.push(`${key} [${shape.join(', ')}]`);
        continue;
      }
      const entry = checkpoint.entry(key);
      if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
        wrongShape.push(`${key}: checkpoint [${entry.shape.join(', ')}], expected [${shape.join(', ')}]`);
      }
      if (!FLOAT_DTYPES.has(entry.dtype)) wrongDtype.push(`${key}: ${entry.dtype}, expected a float dtype`);
    }
    const unexpected = checkpoint.keys().filter((k) => !spec.has(k) && !(options.ignore?.(k) ?? false));
    if (missing.length || unexpected.length || wrongShape.length || wrongDtype.length) {
      const parts = [
        missing.length ? listed('missing', missing) : '',
        unexpected.length ? listed('unexpected', unexpected) : '',
        wrongShape.length ? listed('wrong shape', wrongShape) : '',
        wrongDtype.length ? listed('wrong dtype', wrongDtype) : '',
      ].filter(Boolean);
      throw new TfvlmError(`weights in ${source} do not match the config:\n${parts.join('\n')}`);
    }
    return new WeightLoader(checkpoint, spec, source);
  }

  /** The tensor stored under key, as float32 (bf16/f16 widened). */
  tensor(key: string): tf.Tensor {
    if (!this.spec.has(key)) throw new Error(`internal: weight '${key}' is not in the spec of ${this.source}`);
    return this.checkpoint.readTensor(key);
  }

  linear(prefix: string, bias: boolean): Linear {
    return linearFromCheckpoint(this.tensor(`${prefix}.weight`), bias ? this.tensor(`${prefix}.bias`) : undefined);
  }

  layerNorm(prefix: string, eps: number): LayerNorm {
    return { weight: this.tensor(`${prefix}.weight`) as tf.Tensor1D, bias: this.tensor(`${prefix}.bias`) as tf.Tensor1D, eps };
  }

  rmsNorm(prefix: string, eps: number): RMSNorm {
    return { weight: this.tensor(`${prefix}.weight`) as tf.Tensor1D, eps };
  }
}

/** Disposes every tensor found in a (nested) weights object. */
export function disposeTree(tree: unknown, seen = new Set<unknown>()): void {
  if (tree === null || typeof tree !== 'object' || seen.has(tree)) return;
  seen.add(tree);
  if (tree instanceof tf.Tensor) {
    tree.dispose();
    return;
  }
  for (const v of Object.values(tree as Record<string, unknown>)) disposeTree(v, seen);
}
