// Writing a model's weights as save_pretrained does: one file, or shards + index.json split in order
// with the shard limit respected; whatever the sharding, Checkpoint.open reads back the same bytes.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Checkpoint } from '../../src/io/checkpoint.ts';
import { planShards, shardFileName, writeCheckpointWeights } from '../../src/io/checkpoint-writer.ts';
import type { RawTensor } from '../../src/io/safetensors.ts';
import { TfvlmError } from '../../src/errors.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-ckpt-writer-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function tensors(): Map<string, RawTensor> {
  const out = new Map<string, RawTensor>();
  [[3, 5], [7], [2, 2, 2], [11, 3], [1]].forEach((shape, i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    out.set(`layer.${i}.weight`, { dtype: 'F32', shape, data: Float32Array.from({ length: n }, (_, j) => i * 100 + j) });
  });
  return out;
}

describe('checkpoint writer', () => {
  it('plans shards in order, starting a new one before the limit is passed', () => {
    assert.deepEqual(planShards([['a', 40], ['b', 50], ['c', 20], ['d', 100], ['e', 1]], 100), [['a', 'b'], ['c'], ['d'], ['e']]);
    assert.deepEqual(planShards([['a', 250], ['b', 1]], 100), [['a'], ['b']]);
    assert.deepEqual(planShards([], 100), [[]]);
    assert.throws(() => planShards([['a', 1]], 0), TfvlmError);
    assert.equal(shardFileName(1, 3), 'model-00002-of-00003.safetensors');
  });

  it('one file without a limit; shards + index with one, read back equal', () => {
    const single = path.join(tmp, 'single');
    const sharded = path.join(tmp, 'sharded');
    fs.mkdirSync(single);
    fs.mkdirSync(sharded);
    const a = writeCheckpointWeights(single, tensors(), { metadata: { format: 'pt' } });
    assert.deepEqual(a.files.map((f) => path.basename(f)), ['model.safetensors']);
    const b = writeCheckpointWeights(sharded, tensors(), { maxShardBytes: 100, metadata: { format: 'pt' } });
    // 60 + 28 bytes, then 32, then 132 (over the limit: alone), then 4.
    assert.deepEqual(b.files.map((f) => path.basename(f)), [1, 2, 3, 4].map((i) => shardFileName(i - 1, 4)));
    assert.equal(a.totalBytes, b.totalBytes);
    const index = JSON.parse(fs.readFileSync(path.join(sharded, 'model.safetensors.index.json'), 'utf8'));
    assert.equal(index.metadata.total_size, a.totalBytes);
    assert.equal(index.weight_map['layer.1.weight'], 'model-00001-of-00004.safetensors');
    assert.equal(index.weight_map['layer.3.weight'], 'model-00003-of-00004.safetensors');
    const x = Checkpoint.open(single);
    const y = Checkpoint.open(sharded);
    try {
      assert.deepEqual(y.keys().sort(), x.keys().sort());
      for (const key of x.keys()) assert.deepEqual(y.readArray(key), x.readArray(key));
    } finally {
      x.close();
      y.close();
    }
  });

  it('tensors given as functions are produced once, when written', () => {
    const dir = path.join(tmp, 'lazy');
    fs.mkdirSync(dir);
    const calls: string[] = [];
    const lazy = new Map<string, RawTensor>([...tensors()].map(([k, t]) => [k, {
      ...t, data: () => { calls.push(k); return t.data as ArrayBufferView; },
    }]));
    writeCheckpointWeights(dir, lazy, { maxShardBytes: 100 });
    assert.deepEqual(calls, [...lazy.keys()]);
  });
});
