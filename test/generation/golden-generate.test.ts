// Greedy generation with the KV cache against transformers' generate(): token ids and every
// step's logits, for each tiny-smolvlm case (single samples, and the batch with right and left padding),
// in the Idefics3 layout and in the SmolVLM2 layout (tiny-smolvlm2: same weights and goldens).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fixture } from '../helpers/paths.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { initBackend, tf } from '../../src/backend/index.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { Idefics3Model } from '../../src/models/idefics3/model.ts';
import { generateTokens, type PromptBatch } from '../../src/generation/generate.ts';
import type { GenerativeModel } from '../../src/models/decoder-model.ts';
import { GREEDY } from '../../src/generation/sampler.ts';

const FOLDERS = ['tiny-smolvlm', 'tiny-smolvlm2', 'tiny-smolvlm-patch'];

function readInputs(folder: string, name: string): PromptBatch {
  const f = SafetensorsFile.open(fixture(folder, 'golden', `${name}.inputs.safetensors`));
  try {
    const [B, T] = f.entry('input_ids').shape;
    assert.ok(B !== undefined && T !== undefined, `${name}: 2-D input_ids`);
    const ids = Array.from(f.readArray('input_ids'));
    const mask = Array.from(f.readArray('attention_mask'));
    const rows = (a: number[]) => Array.from({ length: B }, (_, b) => a.slice(b * T, (b + 1) * T));
    return {
      input_ids: rows(ids),
      attention_mask: rows(mask),
      pixel_values: f.readArray('pixel_values') as Float32Array,
      pixelShape: f.entry('pixel_values').shape,
      pixel_attention_mask: Uint8Array.from(f.readArray('pixel_attention_mask'), (v) => (v ? 1 : 0)),
    };
  } finally {
    f.close();
  }
}

function goldenTensor(folder: string, name: string, key: string): Float32Array {
  const f = SafetensorsFile.open(fixture(folder, 'golden', `${name}.safetensors`));
  try {
    return f.readArray(key) as Float32Array;
  } finally {
    f.close();
  }
}

async function run(vlm: GenerativeModel, prompt: PromptBatch, maxNewTokens: number, eos: number, pad: number, keepLogits: boolean) {
  const steps: Float32Array[] = [];
  const loop = generateTokens(vlm, prompt, {
    ...GREEDY, maxNewTokens, eosTokenIds: [eos], padTokenId: pad, seed: 0,
    ...(keepLogits ? { onLogits: (l: Float32Array) => steps.push(l) } : {}),
  });
  let r = await loop.next();
  while (!r.done) r = await loop.next();
  return { generated: r.value.generated, steps };
}

for (const folder of FOLDERS) describe(`generate (greedy, KV cache) vs transformers: ${folder}`, () => {
  const cases = JSON.parse(fs.readFileSync(fixture(folder, 'golden', 'cases.json'), 'utf8')).cases;
  const generation = JSON.parse(fs.readFileSync(fixture(folder, 'generation_config.json'), 'utf8'));
  const EOS = generation.eos_token_id as number;
  let model: Idefics3Model;
  let vlm: GenerativeModel;
  before(async () => {
    await initBackend();
    model = await Idefics3Model.load(fixture(folder));
    vlm = model;
  });
  after(() => model.dispose());

  for (const c of cases.filter((c: { batch?: number }) => c.batch === undefined)) {
    it(`${c.name}: ${c.generate.max_new_tokens} tokens and each step's logits`, async () => {
      const { generated, steps } = await run(vlm, readInputs(folder, c.name), c.generate.max_new_tokens, EOS, 2, true);
      assert.deepEqual(generated[0], c.generate.new_token_ids);
      const golden = goldenTensor(folder, c.name, 'generate.logits');
      const V = golden.length / steps.length;
      steps.forEach((s, k) => assertClose(s, golden.subarray(k * V, (k + 1) * V), TOLERANCE.float32, `${c.name} step ${k} logits`));
      const onDevice = await run(vlm, readInputs(folder, c.name), c.generate.max_new_tokens, EOS, 2, false);
      assert.deepEqual(onDevice.generated[0], c.generate.new_token_ids, 'on-device argmax path');
    });
  }

  const batch = cases.find((c: { batch?: number }) => c.batch !== undefined);
  if (batch) it('batch_two_conversations, right padding: per-row ids and step logits (first token from the last column)', async () => {
    const { generated, steps } = await run(vlm, readInputs(folder, batch.name), batch.generate.max_new_tokens, EOS, 2, true);
    assert.deepEqual(generated, batch.generate.new_token_ids);
    const golden = goldenTensor(folder, batch.name, 'generate.logits'); // [2, 8, V]
    const [B, S] = [2, batch.generate.max_new_tokens];
    const V = golden.length / (B * S);
    for (let k = 0; k < S; k++) {
      for (let b = 0; b < B; b++) {
        assertClose(steps[k]!.subarray(b * V, (b + 1) * V), golden.subarray((b * S + k) * V, (b * S + k + 1) * V), TOLERANCE.float32, `row ${b} step ${k}`);
      }
    }
  });

  if (batch) it('batch_two_conversations, left padding: each row equals its single-sample run', async () => {
    const left = batch.generate_left_padding;
    const prompt = { ...readInputs(folder, batch.name), input_ids: left.input_ids, attention_mask: left.attention_mask };
    const { generated, steps } = await run(vlm, prompt, batch.generate.max_new_tokens, EOS, 2, true);
    assert.deepEqual(generated[0], batch.single_sample[0].new_token_ids);
    const golden = goldenTensor(folder, batch.name, 'generate_left_padding.logits');
    const [B, S] = [2, batch.generate.max_new_tokens];
    const V = golden.length / (B * S);
    for (let k = 0; k < S; k++) {
      for (let b = 0; b < B; b++) {
        assertClose(steps[k]!.subarray(b * V, (b + 1) * V), golden.subarray((b * S + k) * V, (b * S + k + 1) * V), TOLERANCE.float32, `row ${b} step ${k}`);
      }
    }
  });

  it('leaves no tensors behind', async () => {
    const c = cases[0];
    await run(vlm, readInputs(folder, c.name), 4, EOS, 2, false);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await run(vlm, readInputs(folder, c.name), 4, EOS, 2, i % 2 === 0);
    assert.equal(tf.memory().numTensors, before);
  });
});
