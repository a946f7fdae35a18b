// forwardDump (the library side of `tfvlm forward`): golden inputs in, logits + named captures out.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tf, initBackend } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { forwardDump, parseCaptureList } from '../../src/models/index.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';

describe('forwardDump', () => {
  let dir: string;
  before(async () => {
    await initBackend();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-dump-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes logits and the requested captures, named as in FIXTURES.md, matching the goldens', async () => {
    const golden = fixture('tiny-smolvlm', 'golden', 'nosplit_single.safetensors');
    const dump = path.join(dir, 'out.safetensors');
    const before = tf.memory().numTensors;
    const result = await forwardDump({
      model: fixture('tiny-smolvlm'), inputs: fixture('tiny-smolvlm', 'golden', 'nosplit_single.inputs.safetensors'), dump,
      capture: parseCaptureList('vision.layers.1,connector,text.norm'),
    });
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(result.tensors.map((t) => t.name).sort(), ['connector', 'logits', 'text.norm', 'vision.layers.1']);
    assert.deepEqual(result.missing, []);
    const out = SafetensorsFile.open(dump);
    const ref = SafetensorsFile.open(golden);
    for (const name of out.keys()) {
      assert.deepEqual(out.entry(name).shape, ref.entry(name).shape, name);
      assertClose(out.readArray(name), ref.readArray(name), TOLERANCE.float32, name);
    }
    out.close();
    ref.close();
  });

  it('parses --capture values', () => {
    assert.equal(parseCaptureList(undefined), 'all');
    assert.equal(parseCaptureList('all'), 'all');
    assert.deepEqual(parseCaptureList('logits, text.layers.0'), ['logits', 'text.layers.0']);
    assert.throws(() => parseCaptureList(','), TfvlmError);
  });
});
