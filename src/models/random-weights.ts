// Random checkpoints with exactly the keys and shapes a config implies (for load tests and
// benchmarks without downloading weights): matrices ~ N(0, std), norm weights ~ 1 + N(0, std),
// biases ~ N(0, std). Deterministic for a seed.
import fs from 'node:fs';
import path from 'node:path';
import { TfvlmError } from '../errors.ts';
import { f32ToBf16, f32ToF16 } from '../io/dtypes.ts';
import { writeSafetensors, type RawTensor } from '../io/safetensors.ts';
import { parseIdefics3Config } from './idefics3/config.ts';
import { idefics3WeightSpec } from './idefics3/model.ts';
import type { WeightSpec } from './weights.ts';

export type RandomDType = 'F32' | 'BF16' | 'F16';

/** Normal(0, 1) samples from a seeded xorshift128+ and Box–Muller. */
export function gaussianSource(seed: number): () => number {
  let s0 = (seed ^ 0x9e3779b9) >>> 0 || 1;
  let s1 = (seed * 0x85ebca6b) >>> 0 || 2;
  const uniform = () => {
    let x = s0;
    const y = s1;
    s0 = y;
    x ^= x << 23;
    x ^= x >>> 17;
    x ^= y ^ (y >>> 26);
    s1 = x >>> 0;
    return ((s0 + s1) >>> 0) / 4294967296 + 1e-12;
  };
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const v = spare;
      spare = undefined;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const t = 2 * Math.PI * uniform();
    spare = r * Math.sin(t);
    return r * Math.cos(t);
  };
}

const NORM_WEIGHT = /(norm|layernorm|layer_norm\d*)\.weight$/;

export interface RandomWeightOptions {
  seed?: number;
  dtype?: RandomDType;
  /** Standard deviation of every tensor (default 0.02) … */
  std?: number;
  /** … unless this gives one for its key. */
  stdOf?: (key: string) => number | undefined;
}

export function randomTensors(spec: WeightSpec, opts: RandomWeightOptions = {}): Map<string, RawTensor> {
  const normal = gaussianSource(opts.seed ?? 0);
  const dtype = opts.dtype ?? 'F32';
  const out = new Map<string, RawTensor>();
  for (const [key, shape] of spec) {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    const base = NORM_WEIGHT.test(key) ? 1 : 0;
    const std = opts.stdOf?.(key) ?? opts.std ?? 0.02;
    for (let i = 0; i < n; i++) values[i] = base + std * normal();
    const data = dtype === 'F32' ? values : dtype === 'BF16' ? f32ToBf16(values) : f32ToF16(values);
    out.set(key, { dtype, shape, data });
  }
  return out;
}

/** Writes `dir/config.json` (as given) and `dir/model.safetensors` with random Idefics3 weights for it. */
export function writeRandomIdefics3Checkpoint(rawConfig: Record<string, unknown>, dir: string,
  opts: RandomWeightOptions = {}): { keys: number; parameters: number } {
  const config = parseIdefics3Config(rawConfig, 'config');
  if (!['idefics3', 'smolvlm'].includes(config.model_type)) {
    throw new TfvlmError(`config model_type '${config.model_type}': random checkpoints are only written for idefics3/smolvlm`);
  }
  const spec = idefics3WeightSpec(config);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), `${JSON.stringify(rawConfig, null, 2)}\n`);
  const tensors = randomTensors(spec, opts);
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  let parameters = 0;
  for (const shape of spec.values()) parameters += shape.reduce((a, b) => a * b, 1);
  return { keys: spec.size, parameters };
}
