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

/** The first two dimensions of a golden tensor's shape. */
function leadingDims(f: SafetensorsFile, name: string): [number, number] {
  const { shape } = f.entry(name);
  const [a, b] = shape;
  assert.ok(a !== undefined && b !== undefined, `golden ${name}: shape [${shape}] has fewer than 2 dimensions`);
  return [a, b];
}

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

  it('records attention probabilities (output_attentions) only when named, without changing the logits', async () => {
    const config = JSON.parse(fs.readFileSync(fixture('tiny-smolvlm', 'config.json'), 'utf8'));
    const inputs = fixture('tiny-smolvlm', 'golden', 'nosplit_single.inputs.safetensors');
    const dump = path.join(dir, 'attn.safetensors');
    const lastText = config.text_config.num_hidden_layers - 1;
    const names = ['text.layers.0.attn_weights', `text.layers.${lastText}.attn_weights`, 'vision.layers.0.attn_weights'];
    const before = tf.memory().numTensors;
    const result = await forwardDump({ model: fixture('tiny-smolvlm'), inputs, dump, capture: names });
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(result.missing, []);
    const out = SafetensorsFile.open(dump);
    const ref = SafetensorsFile.open(fixture('tiny-smolvlm', 'golden', 'nosplit_single.safetensors'));
    assertClose(out.readArray('logits'), ref.readArray('logits'), TOLERANCE.float32, 'logits');
    const [B, T] = leadingDims(ref, 'text.norm');
    const [N, P] = leadingDims(ref, 'vision.layers.0');
    const expected: Record<string, [number, number, number, number]> = {
      'text.layers.0.attn_weights': [B, config.text_config.num_attention_heads, T, T],
      [`text.layers.${lastText}.attn_weights`]: [B, config.text_config.num_attention_heads, T, T],
      'vision.layers.0.attn_weights': [N, config.vision_config.num_attention_heads, P, P],
    };
    for (const [name, shape] of Object.entries(expected)) {
      assert.deepEqual(out.entry(name).shape, shape, name);
      const w = out.readArray(name);
      const S = shape[3];
      for (let r = 0; r < w.length / S; r++) {
        let sum = 0;
        for (let s = 0; s < S; s++) sum += w[r * S + s]!;
        assert.ok(Math.abs(sum - 1) < 1e-5, `${name} row ${r} sums to ${sum}`);
      }
      if (name.startsWith('text.')) {
        for (let r = 0; r < w.length / S; r++) for (let s = (r % T) + 1; s < S; s++) assert.equal(w[r * S + s], 0, `${name}: causal`);
      }
    }
    out.close();
    ref.close();
    const all = await forwardDump({ model: fixture('tiny-smolvlm'), inputs, dump, capture: 'all' });
    assert.ok(!all.tensors.some((t) => t.name.endsWith('.attn_weights')), "'all' leaves attention probabilities out");
  });

  it('parses --capture values', () => {
    assert.equal(parseCaptureList(undefined), 'all');
    assert.equal(parseCaptureList('all'), 'all');
    assert.deepEqual(parseCaptureList('logits, text.layers.0'), ['logits', 'text.layers.0']);
    assert.throws(() => parseCaptureList(','), TfvlmError);
  });
});
