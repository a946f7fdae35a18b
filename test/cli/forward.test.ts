// `tfvlm forward` end to end: the dump of a golden case's inputs equals transformers' tensors, and
// a request (--messages) dumps the inputs the processor built.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixture } from '../helpers/paths.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const MODEL = fixture('tiny-smolvlm');
const tfvlm = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

describe('tfvlm forward', () => {
  let tmp: string;
  before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-fwd-')); });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('--inputs: every dumped tensor matches the golden of split_single', () => {
    const dump = path.join(tmp, 'split.safetensors');
    const r = tfvlm(['forward', '--model', MODEL, '--inputs', fixture('tiny-smolvlm', 'golden', 'split_single.inputs.safetensors'), '--dump', dump]);
    assert.equal(r.status, 0, r.stderr);
    const mine = SafetensorsFile.open(dump);
    const golden = SafetensorsFile.open(fixture('tiny-smolvlm', 'golden', 'split_single.safetensors'));
    const compared: string[] = [];
    for (const name of golden.keys()) {
      if (name.startsWith('generate') || name === 'pixel_values' || name === 'pixel_attention_mask') continue;
      assert.ok(mine.has(name), `dump lacks ${name}`);
      assert.deepEqual(mine.entry(name).shape, golden.entry(name).shape, name);
      assertClose(mine.readArray(name), golden.readArray(name), TOLERANCE.float32, name);
      compared.push(name);
    }
    assert.ok(compared.includes('logits') && compared.includes('vision.layers.1') && compared.includes('connector.pixel_shuffle'));
    mine.close();
    golden.close();
  });

  it('--messages: dumps the processor-built inputs, --capture limits the rest', () => {
    const messages = path.join(tmp, 'm.json');
    fs.copyFileSync(fixture('tiny-smolvlm', 'golden', 'inputs', 'tall_80x120.png'), path.join(tmp, 'tall.png'));
    fs.writeFileSync(messages, JSON.stringify([{ role: 'user', content: [{ type: 'text', text: 'What is in the picture?' }, { type: 'image', image: 'tall.png' }] }]));
    const dump = path.join(tmp, 'req.safetensors');
    const r = tfvlm(['forward', '--model', MODEL, '--messages', messages, '--image-splitting', 'off', '--capture', 'connector', '--dump', dump]);
    assert.equal(r.status, 0, r.stderr);
    const mine = SafetensorsFile.open(dump);
    assert.deepEqual(mine.keys().sort(), ['attention_mask', 'connector', 'input_ids', 'logits', 'pixel_attention_mask', 'pixel_values']);
    const golden = SafetensorsFile.open(fixture('tiny-smolvlm', 'golden', 'nosplit_single.inputs.safetensors'));
    assert.deepEqual(Array.from(mine.readArray('input_ids')), Array.from(golden.readArray('input_ids')));
    assertClose(mine.readArray('pixel_values'), golden.readArray('pixel_values'), TOLERANCE.pixels, 'pixel_values');
    mine.close();
    golden.close();
  });

  it('names a missing input file', () => {
    const r = tfvlm(['forward', '--model', MODEL, '--inputs', path.join(tmp, 'none.safetensors'), '--dump', path.join(tmp, 'x.safetensors')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /none\.safetensors/);
  });
});
