// Writes a model folder's weights as transformers' save_pretrained does: one model.safetensors, or
// shards `model-00001-of-0000N.safetensors` plus model.safetensors.index.json when they exceed
// maxShardBytes (huggingface_hub split_torch_state_dict_into_shards: tensors in order, a new shard
// when the next tensor would overflow the current one, a tensor larger than the limit alone).
import path from 'node:path';
import { TfvlmError } from '../errors.ts';
import { tf } from '../backend/index.ts';
import { writeFileAtomic } from './atomic-write.ts';
import { SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME } from './checkpoint.ts';
import { DTYPE_BYTES } from './dtypes.ts';
import { writeSafetensors, type RawTensor } from './safetensors.ts';

export interface WriteCheckpointOptions {
  /** Largest shard in bytes (default: no limit, one file). */
  maxShardBytes?: number;
  /** `__metadata__` of every file (transformers writes `{format: 'pt'}`). */
  metadata?: Record<string, string>;
  /** Called after each file is written. */
  onFile?: (file: string, index: number, total: number) => void;
}

export interface WrittenCheckpoint {
  files: string[];
  totalBytes: number;
}

function byteLengthOf(name: string, t: tf.Tensor | RawTensor): number {
  if (!(t instanceof tf.Tensor)) return t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
  if (t.dtype !== 'float32' && t.dtype !== 'int32' && t.dtype !== 'bool') {
    throw new TfvlmError(`checkpoint: tensor '${name}' has tf dtype '${t.dtype}', which safetensors cannot hold`);
  }
  return t.size * (t.dtype === 'bool' ? 1 : 4);
}

/** Groups tensors (in order) into shards of at most maxShardBytes each. */
export function planShards(sizes: [string, number][], maxShardBytes: number): string[][] {
  if (!(maxShardBytes > 0)) throw new TfvlmError(`checkpoint: maxShardBytes must be positive, got ${maxShardBytes}`);
  const shards: string[][] = [];
  let current: string[] = [];
  let currentBytes = 0;
  for (const [name, bytes] of sizes) {
    if (current.length > 0 && currentBytes + bytes > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(name);
    currentBytes += bytes;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

export function shardFileName(index: number, total: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `model-${pad(index + 1)}-of-${pad(total)}.safetensors`;
}

/**
 * Writes `tensors` into `dir` (which must exist) as model.safetensors or as shards + index. Each file
 * is written atomically; the index is written last, so a folder with an index has all its shards.
 * Float32 tf tensors are written as F32; RawTensors keep their dtype.
 */
export function writeCheckpointWeights(dir: string, tensors: Map<string, tf.Tensor | RawTensor>,
  options: WriteCheckpointOptions = {}): WrittenCheckpoint {
  const sizes = [...tensors].map(([name, t]): [string, number] => [name, byteLengthOf(name, t)]);
  const totalBytes = sizes.reduce((a, [, b]) => a + b, 0);
  const shards = options.maxShardBytes === undefined ? [[...tensors.keys()]] : planShards(sizes, options.maxShardBytes);
  if (shards.length === 1) {
    const file = path.join(dir, SAFE_WEIGHTS_NAME);
    writeSafetensors(file, tensors, options.metadata);
    options.onFile?.(file, 0, 1);
    return { files: [file], totalBytes };
  }
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  shards.forEach((names, i) => {
    const name = shardFileName(i, shards.length);
    const file = path.join(dir, name);
    writeSafetensors(file, new Map(names.map((n) => [n, tensors.get(n)!])), options.metadata);
    for (const n of names) weightMap[n] = name;
    files.push(file);
    options.onFile?.(file, i, shards.length);
  });
  const sortedMap = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
  const index = { metadata: { total_size: totalBytes }, weight_map: sortedMap };
  writeFileAtomic(path.join(dir, SAFE_WEIGHTS_INDEX_NAME), `${JSON.stringify(index, null, 2)}\n`);
  return { files, totalBytes };
}
