// `tfvlm quantize` and `--dtype` end to end on the tiny SmolVLM fixture: a folder written once
// generates exactly what quantizing at load generates; bad arguments are named.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixture } from '../helpers/paths.ts';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const MODEL = fixture('tiny-smolvlm');
const cases = JSON.parse(fs.readFileSync(fixture('tiny-smolvlm', 'golden', 'cases.json'), 'utf8')).cases;
const IMG = fixture('tiny-smolvlm', 'golden', cases.find((c: { name: string }) => c.name === 'split_single').images[0]);

const tfvlm = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, TFVLM_MODEL: '' } });

describe('tfvlm quantize and --dtype', () => {
  let tmp: string;
  before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-quantize-cli-')); });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('writes a folder whose greedy answer is the one --dtype q8 gives at load', () => {
    const out = path.join(tmp, 'q8');
    const q = tfvlm(['quantize', MODEL, '--bits', '8', '--group-size', '32', '--out', out, '--json', '-q']);
    assert.equal(q.status, 0, q.stderr);
    const summary = JSON.parse(q.stdout);
    assert.equal(summary.bits, 8);
    assert.equal(summary.group_size, 32);
    assert.ok(summary.quantized.includes('language_model.layers.0.mlp.down_proj'));
    assert.ok(summary.kept.includes('model.vision_model.embeddings.patch_embedding.weight'));
    const gen = (args: string[]) => {
      const r = tfvlm(['generate', '--prompt', '<image>Describe this image.', '--image', IMG, '--max-new-tokens', '12', '--greedy', '--json', '-q', ...args]);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout).generated_ids as number[];
    };
    const saved = gen(['--model', out]);
    assert.equal(saved.length, 12);
    assert.deepEqual(saved, gen(['--model', MODEL, '--dtype', 'q8', '--group-size', '32']));
  });

  it('names bad arguments', () => {
    const bits = tfvlm(['quantize', MODEL, '--bits', '3', '--out', path.join(tmp, 'x')]);
    assert.equal(bits.status, 1);
    assert.match(bits.stderr, /--bits must be 4 or 8, got 3/);
    const group = tfvlm(['quantize', MODEL, '--bits', '4', '--group-size', '48', '--out', path.join(tmp, 'y')]);
    assert.equal(group.status, 1);
    assert.match(group.stderr, /group size 48 is not supported \(32, 64 or 128\)/);
    const dtype = tfvlm(['describe', IMG, '--model', MODEL, '--dtype', 'q5']);
    assert.equal(dtype.status, 1);
    assert.match(dtype.stderr, /--dtype must be auto, q8 or q4, got 'q5'/);
    const lone = tfvlm(['describe', IMG, '--model', MODEL, '--group-size', '32']);
    assert.equal(lone.status, 1);
    assert.match(lone.stderr, /--group-size applies only with --dtype q8 or q4/);
    fs.mkdirSync(path.join(tmp, 'full'));
    fs.writeFileSync(path.join(tmp, 'full', 'keep.txt'), 'x');
    const full = tfvlm(['quantize', MODEL, '--bits', '4', '--out', path.join(tmp, 'full')]);
    assert.equal(full.status, 1);
    assert.match(full.stderr, /exists and is not empty/);
  });
});
