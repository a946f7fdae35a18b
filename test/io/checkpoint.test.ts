import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend, tf } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { Checkpoint } from '../../src/io/checkpoint.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { fixture } from '../helpers/paths.ts';

let tmp: string;
let counter = 0;
const newDir = () => {
  const d = path.join(tmp, `ckpt-${counter++}`);
  fs.mkdirSync(d);
  return d;
};

before(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-checkpoint-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function throwsNaming(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TfvlmError, `expected TfvlmError, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message lacks '${p}': ${e.message}`);
    return true;
  });
}

const f32 = (...v: number[]) => ({ dtype: 'F32' as const, shape: [v.length], data: Float32Array.from(v) });

/** Two shards + index, like transformers' save_pretrained(max_shard_size=...). */
function shardedDir(weightMapOverride?: Record<string, string>): string {
  const dir = newDir();
  writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), { 'a.weight': f32(1, 2), 'b.weight': f32(3) }, { format: 'pt' });
  writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), {
    'c.weight': { dtype: 'BF16', shape: [2], data: Uint16Array.of(0x3f80, 0xc000) },
    'd.ids': { dtype: 'I64', shape: [], data: BigInt64Array.of(5n) },
  });
  const weight_map = weightMapOverride ?? {
    'a.weight': 'model-00001-of-00002.safetensors',
    'b.weight': 'model-00001-of-00002.safetensors',
    'c.weight': 'model-00002-of-00002.safetensors',
    'd.ids': 'model-00002-of-00002.safetensors',
  };
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: 24 }, weight_map }));
  return dir;
}

describe('Checkpoint', () => {
  it('opens a directory with model.safetensors, and the file itself', () => {
    const dir = newDir();
    writeSafetensors(path.join(dir, 'model.safetensors'), { w: f32(1, 2, 3) }, { format: 'pt' });
    fs.writeFileSync(path.join(dir, 'other.safetensors'), 'ignored: model.safetensors wins');
    for (const target of [dir, path.join(dir, 'model.safetensors')]) {
      const c = Checkpoint.open(target);
      assert.deepEqual(c.keys(), ['w']);
      assert.deepEqual(c.metadata, { format: 'pt' });
      assert.deepEqual([...c.readArray('w')], [1, 2, 3]);
      assert.equal(c.stats.files, 1);
      c.close();
    }
  });

  it('opens a directory holding a single *.safetensors of another name', () => {
    const dir = newDir();
    writeSafetensors(path.join(dir, 'weights.safetensors'), { w: f32(4) });
    const c = Checkpoint.open(dir);
    assert.equal(c.entry('w').file, path.join(dir, 'weights.safetensors'));
    c.close();
  });

  it('says what it looked for when a directory has no weights, or several without an index', () => {
    const empty = newDir();
    throwsNaming(() => Checkpoint.open(empty), empty, 'model.safetensors.index.json', 'model.safetensors', '*.safetensors', 'found none');
    const two = newDir();
    writeSafetensors(path.join(two, 'x.safetensors'), {});
    writeSafetensors(path.join(two, 'y.safetensors'), {});
    throwsNaming(() => Checkpoint.open(two), two, 'x.safetensors, y.safetensors');
    throwsNaming(() => Checkpoint.open(path.join(tmp, 'nowhere')), 'nowhere', 'no such');
  });

  it('reads sharded checkpoints through the index, one tensor at a time', () => {
    const dir = shardedDir();
    fs.writeFileSync(path.join(dir, 'model.safetensors'), 'not used: the index is preferred');
    const c = Checkpoint.open(dir);
    try {
      assert.equal(c.stats.files, 2);
      assert.deepEqual(c.keys(), ['a.weight', 'b.weight', 'c.weight', 'd.ids']);
      assert.equal(c.has('c.weight'), true);
      assert.equal(c.has('zzz'), false);
      assert.deepEqual(c.metadata, { total_size: '24' });
      assert.equal(c.entry('c.weight').file, path.join(dir, 'model-00002-of-00002.safetensors'));
      const headers = c.stats.bytesRead;
      assert.deepEqual([...c.readArray('c.weight')], [1, -2]);
      assert.equal(c.stats.bytesRead - headers, 4);
      assert.deepEqual([...c.readArray('a.weight')], [1, 2]);
      const before = tf.memory().numTensors;
      const t = c.readTensor('d.ids');
      assert.deepEqual(t.shape, []);
      assert.equal(t.dtype, 'int32');
      assert.equal(t.dataSync()[0], 5);
      t.dispose();
      assert.equal(tf.memory().numTensors, before);
      const fromBoth = ['c.weight', 'a.weight', 'b.weight'].map((k) => c.readTensor(k));
      assert.deepEqual(fromBoth.map((x) => [...x.dataSync()]), [[1, -2], [1, 2], [3]]);
      tf.dispose(fromBoth);
      throwsNaming(() => c.readArray('zzz'), 'model.safetensors.index.json', "'zzz'");
      assert.ok(c.stats.readMs >= 0);
    } finally {
      c.close();
    }
    // also by naming the index file
    const c2 = Checkpoint.open(path.join(dir, 'model.safetensors.index.json'));
    assert.equal(c2.keys().length, 4);
    c2.close();
  });

  it('refuses an index naming a missing shard', () => {
    const dir = shardedDir({ 'a.weight': 'model-00001-of-00002.safetensors', 'e.weight': 'model-00003-of-00002.safetensors' });
    throwsNaming(() => Checkpoint.open(dir), 'model.safetensors.index.json', 'model-00003-of-00002.safetensors', "'e.weight'");
  });

  it('refuses an index placing a tensor in a shard that does not hold it', () => {
    const dir = shardedDir({ 'a.weight': 'model-00002-of-00002.safetensors', 'c.weight': 'model-00002-of-00002.safetensors' });
    throwsNaming(() => Checkpoint.open(dir), 'model.safetensors.index.json', "'a.weight' not in model-00002-of-00002.safetensors");
  });

  it('refuses an index that is not JSON or has no weight_map', () => {
    let dir = newDir();
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), '{"weight_map": ');
    throwsNaming(() => Checkpoint.open(dir), path.join(dir, 'model.safetensors.index.json'), 'JSON');
    dir = newDir();
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), '{"metadata": {}}');
    throwsNaming(() => Checkpoint.open(dir), 'weight_map', 'missing');
    dir = newDir();
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), '{"weight_map": {"a": 3}}');
    throwsNaming(() => Checkpoint.open(dir), "weight_map['a']");
  });

  it('passes a corrupt shard\'s error through, naming the shard', () => {
    const dir = shardedDir();
    const shard = path.join(dir, 'model-00002-of-00002.safetensors');
    fs.truncateSync(shard, fs.statSync(shard).size - 1);
    throwsNaming(() => Checkpoint.open(dir), shard);
  });

  for (const name of ['tiny-clip', 'tiny-llava', 'tiny-siglip', 'tiny-smolvlm']) {
    it(`opens the ${name} fixture and reads every tensor`, () => {
      const c = Checkpoint.open(fixture(name));
      for (const k of c.keys()) {
        assert.equal(c.readArray(k).length, c.entry(k).shape.reduce((a, b) => a * b, 1));
      }
      assert.equal(c.stats.bytesRead, fs.statSync(fixture(name, 'model.safetensors')).size);
      c.close();
    });
  }
});
