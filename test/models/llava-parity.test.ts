// LLaVA (tiny-llava) against transformers 4.47.1 goldens: every captured intermediate and the logits of
// every case (a Capture asked for exactly the golden names), greedy generation with the KV cache
// (ids and each step's logits), and the whole request path from the raw prompt and image files.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tf, initBackend } from '../../src/backend/index.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { Capture } from '../../src/models/capture.ts';
import { LlavaModel } from '../../src/models/llava/model.ts';
import { generateTokens, type PromptBatch } from '../../src/generation/generate.ts';
import { GREEDY } from '../../src/generation/sampler.ts';
import { Vlm } from '../../src/engine.ts';
import { assertClose, diff, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';

const DIR = fixture('tiny-llava');
const GOLDEN = fixture('tiny-llava', 'golden');
interface Case {
  name: string;
  prompt: string;
  images: string[];
  input_ids: number[];
  tensors: Record<string, number[]>;
  generate: { max_new_tokens: number; new_token_ids: number[] };
}
const cases = JSON.parse(fs.readFileSync(`${GOLDEN}/cases.json`, 'utf8')).cases as Case[];

function readInputs(name: string): { input_ids: tf.Tensor; attention_mask: tf.Tensor; pixel_values: tf.Tensor } {
  const f = SafetensorsFile.open(`${GOLDEN}/${name}.inputs.safetensors`);
  try {
    return { input_ids: f.readTensor('input_ids'), attention_mask: f.readTensor('attention_mask'), pixel_values: f.readTensor('pixel_values') };
  } finally {
    f.close();
  }
}

function golden(name: string, key: string): Float32Array {
  const f = SafetensorsFile.open(`${GOLDEN}/${name}.safetensors`);
  try {
    return f.readArray(key) as Float32Array;
  } finally {
    f.close();
  }
}

describe('LLaVA (tiny-llava) parity with transformers', () => {
  let model: LlavaModel;
  before(async () => {
    await initBackend();
    model = await LlavaModel.load(DIR);
  });
  after(() => model?.dispose());

  for (const c of cases) {
    it(`case ${c.name}: every intermediate and the logits`, () => {
      const inputs = readInputs(c.name);
      const names = Object.keys(c.tensors).filter((n) => !n.startsWith('generate') && n !== 'pixel_values');
      const capture = new Capture(names.filter((n) => n !== 'logits'));
      const before = tf.memory().numTensors;
      const { logits } = model.forward(
        { input_ids: inputs.input_ids, attention_mask: inputs.attention_mask, pixel_values: inputs.pixel_values }, { capture },
      );
      assert.deepEqual(capture.missing(), []);
      const rows: string[] = [];
      for (const name of names) {
        const actual = name === 'logits' ? logits : capture.get(name)!;
        assert.deepEqual(actual.shape, c.tensors[name], `${name} shape`);
        const expected = golden(c.name, name);
        const d = diff(actual.dataSync() as Float32Array, expected);
        rows.push(`  ${name.padEnd(20)} ${String(c.tensors[name]).padEnd(12)} max|Δ| ${d.maxAbs.toExponential(2)}  max|ref| ${d.maxRef.toExponential(2)}`);
        assertClose(actual.dataSync() as Float32Array, expected, TOLERANCE.float32, `${c.name} ${name}`);
      }
      console.log(`parity ${c.name}:\n${rows.join('\n')}`);
      logits.dispose();
      capture.dispose();
      assert.equal(tf.memory().numTensors, before, 'forward leaves no tensors behind');
      Object.values(inputs).forEach((t) => t.dispose());
    });
  }

  it('a capture of only the last vision layer (past vision_feature_layer) still gets it', () => {
    const [c] = cases;
    assert.ok(c, 'cases.json has no case');
    const inputs = readInputs(c.name);
    const capture = new Capture(['vision.layers.2']);
    model.forward({ input_ids: inputs.input_ids, pixel_values: inputs.pixel_values }, { capture }).logits.dispose();
    assert.deepEqual(capture.missing(), []);
    assertClose(capture.get('vision.layers.2')!.dataSync() as Float32Array, golden(c.name, 'vision.layers.2'), TOLERANCE.float32, 'vision.layers.2');
    capture.dispose();
    Object.values(inputs).forEach((t) => t.dispose());
  });

  for (const c of cases) {
    it(`case ${c.name}: greedy generation (KV cache) reproduces the ids and every step's logits`, async () => {
      const inputs = readInputs(c.name);
      const prompt: PromptBatch = {
        input_ids: [Array.from(inputs.input_ids.dataSync())],
        attention_mask: [Array.from(inputs.attention_mask.dataSync())],
        pixel_values: inputs.pixel_values.dataSync() as Float32Array,
        pixelShape: inputs.pixel_values.shape,
      };
      Object.values(inputs).forEach((t) => t.dispose());
      const steps: Float32Array[] = [];
      const before = tf.memory().numTensors;
      const loop = generateTokens(model, prompt, {
        ...GREEDY, maxNewTokens: c.generate.max_new_tokens, eosTokenIds: [2], padTokenId: 500, seed: 0,
        onLogits: (l) => steps.push(l),
      });
      let r = await loop.next();
      while (!r.done) r = await loop.next();
      assert.deepEqual(r.value.generated[0], c.generate.new_token_ids);
      const stepLogits = golden(c.name, 'generate.logits');
      const V = stepLogits.length / c.generate.max_new_tokens;
      assert.equal(steps.length, c.generate.max_new_tokens);
      steps.forEach((s, k) => assertClose(s, stepLogits.subarray(k * V, (k + 1) * V), TOLERANCE.float32, `${c.name} step ${k} logits`));
      assert.equal(tf.memory().numTensors, before, 'generation leaves no tensors behind');
    });
  }
});

describe('LLaVA through Vlm.load: raw prompt + image files → golden ids', () => {
  let vlm: Vlm;
  before(async () => {
    vlm = await Vlm.load(DIR);
  });
  after(() => vlm?.dispose());

  for (const c of cases) {
    it(`case ${c.name}`, async () => {
      const images = c.images.map((p) => `${GOLDEN}/${p}`);
      const out = await vlm.generate({ prompt: c.prompt, images }, { maxNewTokens: c.generate.max_new_tokens });
      assert.deepEqual(out.input_ids, c.input_ids, 'processor input_ids');
      assert.deepEqual(out.generatedIds, c.generate.new_token_ids);
    });
  }
});
