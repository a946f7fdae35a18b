// `tfvlm train` end to end through the bin script (which registers tsx itself), with data-parallel workers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../../src/backend/index.ts';
import { DATA_FILE } from '../../examples/shapes-demo/dataset.ts';
import { tinySetup, type TinySetup } from '../train/tiny.ts';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const tfvlm = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, TFVLM_THREADS: '1' } });

let s: TinySetup;
before(async () => {
  await initBackend();
  s = await tinySetup();
});
after(() => fs.rmSync(s.root, { recursive: true, force: true }));

describe('tfvlm train', () => {
  it('trains with a gradient worker and length-grouped batches, and writes a Hugging Face folder', () => {
    const out = path.join(s.root, 'out');
    const r = tfvlm(['train', '--model', s.modelDir, '--data', path.join(s.root, 'data', DATA_FILE), '--out', out,
      '--max-steps', '2', '--batch-size', '3', '--workers', '1', '--group-by-length', '--log-every', '1', '--seed', '2']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /1 gradient worker\(s\) started: each step's examples are split 2 ways/);
    assert.match(r.stderr, /step 2\/2 {2}loss \d/);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) assert.ok(fs.existsSync(path.join(out, f)), f);
  });

  it('names a bad --workers value', () => {
    const r = tfvlm(['train', '--model', s.modelDir, '--data', path.join(s.root, 'data', DATA_FILE), '--out', path.join(s.root, 'bad'), '--workers', '1.5']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--workers must be a non-negative integer, got 1.5/);
  });
});
