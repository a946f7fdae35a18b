// Random checkpoints with exactly the keys and shapes a config implies (for load tests and
// benchmarks without downloading weights): matrices ~ N(0, std), norm weights ~ 1 + N(0, std),
// biases ~ N(0, std). Deterministic for a seed: the same seed gives the same values however the file is sharded.
import fs from 'node:fs';
import path from 'node:path';
import { TfvlmError } from '../errors.ts';
import { f32ToBf16, f32ToF16 } from '../io/dtypes.ts';
import { writeFileAtomic } from '../io/atomic-write.ts';
import { writeCheckpointWeights } from '../io/checkpoint-writer.ts';
import type { RawTensor } from '../io/safetensors.ts';
import { findArchitecture } from './registry.ts';
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

/** The values of one random tensor: `base + std · N(0, 1)` in the requested dtype. */
function randomValues(key: string, shape: number[], normal: () => number, opts: RandomWeightOptions): ArrayBufferView {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  const base = NORM_WEIGHT.test(key) ? 1 : 0;
  const std = opts.stdOf?.(key) ?? opts.std ?? 0.02;
  for (let i = 0; i < n; i++) values[i] = base + std * normal();
  const dtype = opts.dtype ?? 'F32';
  return dtype === 'F32' ? values : dtype === 'BF16' ? f32ToBf16(values) : f32ToF16(values);
}

/** Random tensors for a spec, drawn in spec order from one seeded stream (all in memory: for small models). */
export function randomTensors(spec: WeightSpec, opts: RandomWeightOptions = {}): Map<string, RawTensor> {
  const normal = gaussianSource(opts.seed ?? 0);
  const dtype = opts.dtype ?? 'F32';
  const out = new Map<string, RawTensor>();
  for (const [key, shape] of spec) out.set(key, { dtype, shape, data: randomValues(key, shape, normal, opts) });
  return out;
}

/**
 * The same values as randomTensors, each drawn only when the writer asks for it, so a model of any
 * size is written with one tensor in memory. They must be asked for in spec order (writers do).
 */
export function lazyRandomTensors(spec: WeightSpec, opts: RandomWeightOptions = {}): Map<string, RawTensor> {
  const normal = gaussianSource(opts.seed ?? 0);
  const dtype = opts.dtype ?? 'F32';
  const order = [...spec.keys()];
  let next = 0;
  const out = new Map<string, RawTensor>();
  for (const [key, shape] of spec) {
    out.set(key, {
      dtype, shape,
      data: () => {
        if (order[next] !== key) throw new Error(`internal: random tensor '${key}' asked for out of order (next is '${order[next]}')`);
        next++;
        return randomValues(key, shape, normal, opts);
      },
    });
  }
  return out;
}

export interface RandomCheckpointOptions extends RandomWeightOptions {
  /** Shard the weights like save_pretrained(max_shard_size=…) (default: one model.safetensors). */
  maxShardBytes?: number;
  onFile?: (file: string, index: number, total: number) => void;
}

/**
 * Writes `dir/config.json` (as given) and random weights with exactly the keys and shapes the config
 * implies for its architecture (any registry architecture), single-file or sharded.
 */
export function writeRandomCheckpoint(rawConfig: Record<string, unknown>, dir: string,
  opts: RandomCheckpointOptions = {}): { keys: number; parameters: number; files: string[]; bytes: number } {
  const architecture = findArchitecture(rawConfig);
  if (!architecture) {
    throw new TfvlmError(`config model_type '${String(rawConfig.model_type)}': no architecture to write random weights for`);
  }
  const spec = architecture.weightSpec(rawConfig);
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, 'config.json'), `${JSON.stringify(rawConfig, null, 2)}\n`);
  const { files, totalBytes } = writeCheckpointWeights(dir, lazyRandomTensors(spec, opts), {
    maxShardBytes: opts.maxShardBytes, metadata: { format: 'pt' }, onFile: opts.onFile,
  });
  let parameters = 0;
  for (const shape of spec.values()) parameters += shape.reduce((a, b) => a * b, 1);
  return { keys: spec.size, parameters, files, bytes: totalBytes };
}
