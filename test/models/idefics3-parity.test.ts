// Whole-model parity against transformers 4.47.1 goldens (test/fixtures/tiny-smolvlm/golden): every
// captured intermediate and the logits of every case, with a parity table per case; the same for the
// SmolVLM2 layout of that checkpoint (tiny-smolvlm2: model_type "smolvlm", same weights and goldens).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tf, initBackend } from '../../src/backend/index.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { Capture, loadModel, type Idefics3Model } from '../../src/models/index.ts';
import { assertClose, diff, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';

type Case = { name: string; tensors: Record<string, number[]>; batch?: number };

/** Keeps golden values only where the row's attention_mask is 1 (padding positions are not meaningful). */
function maskedPositions(values: Float32Array, mask: Int32Array, B: number, T: number): number[] {
  const width = values.length / (B * T);
  const keep: number[] = [];
  for (let i = 0; i < B * T; i++) if (mask[i]) for (let j = 0; j < width; j++) keep.push(i * width + j);
  return keep;
}

for (const folder of ['tiny-smolvlm', 'tiny-smolvlm2', 'tiny-smolvlm-patch']) describe(`Idefics3 / SmolVLM (${folder}) parity with transformers`, () => {
  const DIR = fixture(folder);
  const GOLDEN = fixture(folder, 'golden');
  const cases = JSON.parse(fs.readFileSync(`${GOLDEN}/cases.json`, 'utf8')).cases as Case[];
  let model: Idefics3Model;
  before(async () => {
    await initBackend();
    model = (await loadModel(DIR)) as Idefics3Model;
  });
  after(() => model?.dispose());

  for (const c of cases) {
    it(`case ${c.name}: every intermediate and the logits`, () => {
      const inputsFile = SafetensorsFile.open(`${GOLDEN}/${c.name}.inputs.safetensors`);
      const goldenFile = SafetensorsFile.open(`${GOLDEN}/${c.name}.safetensors`);
      const read = (k: string) => inputsFile.readTensor(k);
      const inputs = {
        input_ids: read('input_ids'), attention_mask: read('attention_mask'),
        pixel_values: read('pixel_values'), pixel_attention_mask: read('pixel_attention_mask'),
      };
      inputsFile.close();
      const capture = new Capture('all');
      const before = tf.memory().numTensors;
      const { logits } = model.forward({
        input_ids: inputs.input_ids, attention_mask: inputs.attention_mask,
        pixel_values: inputs.pixel_values, pixel_attention_mask: inputs.pixel_attention_mask,
      }, { capture });
      const [B, T] = inputs.input_ids.shape;
      assert.ok(B !== undefined && T !== undefined, `input_ids shape [${inputs.input_ids.shape}] is not [B, T]`);
      const mask = inputs.attention_mask.dataSync() as Int32Array;
      const padded = mask.some((m) => m === 0);
      const rows: string[] = [];
      const names = Object.keys(c.tensors).filter((n) => goldenFile.has(n) && !n.startsWith('generate') && n !== 'pixel_values' && n !== 'pixel_attention_mask');
      assert.ok(names.includes('logits'));
      for (const name of names) {
        const actualT = name === 'logits' ? logits : capture.get(name);
        assert.ok(actualT, `no tensor captured for ${name}`);
        assert.deepEqual(actualT.shape, c.tensors[name], `${name} shape`);
        const expected = goldenFile.readArray(name) as Float32Array;
        let actual = actualT.dataSync() as Float32Array;
        let ref: ArrayLike<number> = expected;
        const perPosition = name === 'logits' || name.startsWith('text.');
        if (padded && perPosition) {
          const keep = maskedPositions(expected, mask, B, T);
          actual = Float32Array.from(keep, (i) => actual[i]!);
          ref = Float32Array.from(keep, (i) => expected[i]!);
        }
        const d = diff(actual, ref);
        rows.push(`  ${name.padEnd(24)} ${String(c.tensors[name]).padEnd(14)} max|Δ| ${d.maxAbs.toExponential(2)}  max|ref| ${d.maxRef.toExponential(2)}`);
        assertClose(actual, ref, TOLERANCE.float32, `${c.name} ${name}`);
      }
      console.log(`parity ${folder} ${c.name}${padded ? ' (text tensors at attention_mask = 1)' : ''}:\n${rows.join('\n')}`);
      goldenFile.close();
      logits.dispose();
      capture.dispose();
      assert.equal(tf.memory().numTensors, before, 'forward leaves no tensors behind');
      Object.values(inputs).forEach((t) => t.dispose());
    });
  }
});
