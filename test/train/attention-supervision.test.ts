// Supervised attention: the auxiliary loss, its checks, and training with it (the supervised head
// learns to look at the targets; tensors do not leak). The shapes demo's targets are tested in
// test/shapes-demo/attention-targets.test.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { initBackend, tf } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { Capture } from '../../src/models/capture.ts';
import {
  attentionSupervisionLoss, checkAttentionSupervision, checkAttentionTargets, type AttentionSupervision,
} from '../../src/train/attention-supervision.ts';
import { collate, disposeBatch } from '../../src/train/batch.ts';
import type { TrainExample } from '../../src/train/examples.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { loadTiny, TINY_SIZE, tinyConfig, tinySetup, type TinySetup } from './tiny.ts';

let s: TinySetup;

before(async () => {
  await initBackend();
  s = await tinySetup();
});
after(() => fs.rmSync(s.root, { recursive: true, force: true }));

describe('attentionSupervisionLoss', () => {
  // [B=1, H=2, T=3, S=3]: rows of head 0 and head 1.
  const probs = [
    [1, 0, 0], [0.5, 0.5, 0], [0.2, 0.3, 0.5],
    [1, 0, 0], [0.9, 0.1, 0], [0.6, 0.3, 0.1],
  ];

  it('is the mean over rows and heads of −log(mass on the keys)', () => {
    const w = tf.tensor4d(probs.flat(), [1, 2, 3, 3]);
    const targets = [[{ query: 2, keys: [0, 2] }, { query: 1, keys: [1] }]];
    const one = attentionSupervisionLoss(w, targets, [0])!;
    const both = attentionSupervisionLoss(w, targets, [0, 1])!;
    const nll = (m: number) => -Math.log(m + 1e-6);
    assert.ok(Math.abs(one.dataSync()[0]! - (nll(0.7) + nll(0.5)) / 2) < 1e-6);
    assert.ok(Math.abs(both.dataSync()[0]! - (nll(0.7) + nll(0.5) + nll(0.7) + nll(0.1)) / 4) < 1e-6);
    tf.dispose([w, one, both]);
  });

  it('is undefined without targets and refuses mismatched inputs', () => {
    const w = tf.tensor4d(probs.flat(), [1, 2, 3, 3]);
    assert.equal(attentionSupervisionLoss(w, [[]], [0]), undefined);
    assert.throws(() => attentionSupervisionLoss(w, [[], []], [0]), /2 target lists for a batch of 1/);
    assert.throws(() => attentionSupervisionLoss(w, [[{ query: 0, keys: [0] }]], [2]), /head 2 of a layer with 2 heads/);
    assert.throws(() => attentionSupervisionLoss(tf.zeros([3, 3]), [[]], [0]), /\[B, H, T, S\]/);
    w.dispose();
  });

  it('checks the layer, heads and weight against the text config, and targets against the example', () => {
    const ok: AttentionSupervision = { layer: 1, heads: [0, 3], weight: 0.5 };
    checkAttentionSupervision(ok, 2, 4);
    assert.throws(() => checkAttentionSupervision({ ...ok, layer: 2 }, 2, 4), /layer 2 .*num_hidden_layers/);
    assert.throws(() => checkAttentionSupervision({ ...ok, heads: [4] }, 2, 4), /head 4 .*num_attention_heads/);
    assert.throws(() => checkAttentionSupervision({ ...ok, heads: [] }, 2, 4), TfvlmError);
    assert.throws(() => checkAttentionSupervision({ ...ok, weight: 0 }, 2, 4), /weight must be > 0/);
    checkAttentionTargets([{ query: 5, keys: [1, 5] }], 6, 'ex');
    assert.throws(() => checkAttentionTargets([{ query: 6, keys: [1] }], 6, 'ex 3'), /ex 3: .*position 6 is outside the example's 6 tokens/);
    assert.throws(() => checkAttentionTargets([{ query: 2, keys: [3] }], 6, 'ex'), /key 3 comes after its query 2/);
    assert.throws(() => checkAttentionTargets([{ query: 2, keys: [] }], 6, 'ex'), /no keys/);
  });
});

/** Examples whose first answer (position `query`) should look at the first image token. */
function withFirstImageTarget(examples: readonly TrainExample[]): TrainExample[] {
  return examples.map((e) => {
    const key = e.input_ids.indexOf(s.processor.imageTokenId);
    const query = [...e.assistant_mask].findIndex((m, t) => t > 0 && m && !e.assistant_mask[t - 1]) - 1;
    return { ...e, attentionTargets: [{ query, keys: [key] }] };
  });
}

function massOnTargets(trainer: Trainer, examples: readonly TrainExample[], sup: AttentionSupervision): number {
  const batch = collate(examples, 0);
  const capture = new Capture([`text.layers.${sup.layer}.attn_weights`]);
  try {
    tf.tidy(() => {
      trainer.model.forward({
        input_ids: batch.input_ids, attention_mask: batch.attention_mask, pixel_values: batch.pixel_values, pixel_attention_mask: batch.pixel_attention_mask,
      }, { capture });
    });
    const w = capture.get(`text.layers.${sup.layer}.attn_weights`)!;
    const [, H, T, S] = w.shape;
    assert.ok(H !== undefined && T !== undefined && S !== undefined, `4-D attention weights, got [${w.shape}]`);
    const [head] = sup.heads;
    assert.ok(head !== undefined, 'a supervised head');
    const v = w.dataSync();
    let mass = 0;
    batch.attentionTargets!.forEach((list, b) => {
      for (const { query, keys } of list) for (const k of keys) mass += v[((b * H + head) * T + query) * S + k]!;
    });
    return mass / examples.length;
  } finally {
    capture.dispose();
    disposeBatch(batch);
  }
}

describe('training with attention supervision', () => {
  const sup: AttentionSupervision = { layer: 1, heads: [1], weight: 1 };

  it('adds weight × the supervised loss to the objective, and only for batches with targets', async () => {
    const model = await loadTiny(s);
    const examples = withFirstImageTarget(s.examples.slice(0, 4));
    const plain = new Trainer(model, s.modelDir, examples, tinyConfig(), 0);
    const supervised = new Trainer(model, s.modelDir, examples, tinyConfig({ attentionSupervision: sup }), 0);
    const heavier = new Trainer(model, s.modelDir, examples, tinyConfig({ attentionSupervision: { ...sup, weight: 3 } }), 0);
    const lm = plain.loss(examples);
    const aux = supervised.loss(examples) - lm;
    assert.ok(aux > 0);
    assert.ok(Math.abs(heavier.loss(examples) - lm - 3 * aux) < 1e-4 * (1 + lm));
    assert.ok(Math.abs(supervised.loss(s.examples.slice(0, 4)) - lm) < 1e-6, 'examples without targets: the language-model loss alone');
    for (const t of [plain, supervised, heavier]) t.dispose();
    model.dispose();
  });

  it('teaches the supervised head to look at the targets, with a flat tensor count', async () => {
    const model = await loadTiny(s);
    const examples = withFirstImageTarget(s.examples.slice(0, 4));
    const trainer = new Trainer(model, s.modelDir, examples, tinyConfig({ attentionSupervision: sup, maxSteps: 12 }), 0);
    const before = massOnTargets(trainer, examples, sup);
    const counts: number[] = [];
    for (let i = 0; i < 12; i++) {
      trainer.trainStep();
      counts.push(tf.memory().numTensors);
    }
    const afterMass = massOnTargets(trainer, examples, sup);
    assert.ok(afterMass > 0.9 && afterMass > before + 0.3, `mass on targets ${before.toFixed(3)} → ${afterMass.toFixed(3)}`);
    assert.deepEqual(counts.slice(1), counts.slice(1).map(() => counts[1]), `tensor counts ${counts}`);
    trainer.dispose();
    model.dispose();
  });

  it('refuses targets outside their example and a layer the model lacks', async () => {
    const model = await loadTiny(s);
    const bad = s.examples.slice(0, 4).map((e) => ({ ...e, attentionTargets: [{ query: e.input_ids.length, keys: [0] }] }));
    assert.throws(() => new Trainer(model, s.modelDir, bad, tinyConfig({ attentionSupervision: sup }), 0), /training example 1: .*outside/);
    assert.throws(() => new Trainer(model, s.modelDir, s.examples.slice(0, 4), tinyConfig({ attentionSupervision: { ...sup, layer: TINY_SIZE.textLayers } }), 0), /layer 2 is not one of/);
    model.dispose();
  });
});
