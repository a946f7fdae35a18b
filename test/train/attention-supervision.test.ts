// Supervised attention: the auxiliary loss, its checks, the shapes dataset's targets, and training
// with it (the supervised head learns to look at the targets; tensors do not leak).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { initBackend, tf } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { readConversations } from '../../src/train/jsonl.ts';
import { DATA_FILE, SCENES_FILE, writeShapesDataset } from '../../src/data/shapes.ts';
import { imageTokenCells } from '../../src/data/scene.ts';
import { QUESTION_TYPES, candidateQuestions } from '../../src/data/text.ts';
import { Capture } from '../../src/models/capture.ts';
import {
  attentionSupervisionLoss, checkAttentionSupervision, checkAttentionTargets, type AttentionSupervision,
} from '../../src/train/attention-supervision.ts';
import { collate, disposeBatch } from '../../src/train/batch.ts';
import { buildExamples, type TrainExample } from '../../src/train/examples.ts';
import { VlmProcessor } from '../../src/processing/processor.ts';
import { attachShapesAttentionTargets, readScenes } from '../../src/train/shapes-attention-targets.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { loadTiny, TINY_SIZE, tinyConfig, tinySetup, type TinySetup } from './tiny.ts';

const DEMO = fileURLToPath(new URL('../../weights/tfvlm-demo', import.meta.url));
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
    assert.ok(Math.abs(one.dataSync()[0] - (nll(0.7) + nll(0.5)) / 2) < 1e-6);
    assert.ok(Math.abs(both.dataSync()[0] - (nll(0.7) + nll(0.5) + nll(0.7) + nll(0.1)) / 4) < 1e-6);
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

describe('shapes attention targets', () => {
  it('point each answer about a shape at the image tokens of that shape\'s cell', async () => {
    // The demo model's processor: 96 px images → 3×3 image tokens, one per cell.
    const processor = await VlmProcessor.load(DEMO);
    const dir = path.join(s.root, 'shapes96');
    await writeShapesDataset(dir, { n: 4, seed: 5, questionsPerImage: 8, questionsPerConversation: 4 });
    const file = path.join(dir, DATA_FILE);
    const conversations = await readConversations(file);
    const scenes = readScenes(path.join(dir, SCENES_FILE));
    const examples = await buildExamples(processor, conversations, file);
    const made = attachShapesAttentionTargets(examples, conversations, scenes, processor.imageTokenId);
    assert.ok(made >= 16, `${made} targets`);
    let checked = 0;
    examples.forEach((e, i) => {
      const conv = conversations[i];
      if (conv.kind === 'caption') return assert.deepEqual(e.attentionTargets, []);
      const image = conv.messages[0].content.find((p) => p.type === 'image');
      const scene = scenes.get(image?.type === 'image' ? image.image : '')!;
      const imagePositions = [...e.input_ids].flatMap((id, t) => (id === processor.imageTokenId ? [t] : []));
      assert.equal(imagePositions.length, 9);
      const cells = imageTokenCells(imagePositions.length);
      const questions = QUESTION_TYPES.flatMap((t) => candidateQuestions(scene, t));
      const answerStarts = [...e.assistant_mask].flatMap((m, t) => (t > 0 && m && !e.assistant_mask[t - 1] ? [t - 1] : []));
      const expected = conv.messages.flatMap((m, k) => {
        if (m.role !== 'assistant') return [];
        const prompt = conv.messages[k - 1].content.find((p) => p.type === 'text');
        const q = questions.find((x) => prompt?.type === 'text' && x.question === prompt.text)!;
        const turn = conv.messages.slice(0, k).filter((x) => x.role === 'assistant').length;
        const keys = imagePositions.filter((_, j) => q.cells.includes(cells[j]));
        return keys.length ? [{ query: answerStarts[turn], keys }] : [];
      });
      assert.deepEqual(e.attentionTargets, expected);
      for (const t of e.attentionTargets!) assert.ok(t.keys.every((k) => k < t.query));
      checked += expected.length;
    });
    assert.equal(checked, made);
  });

  it('name the cells of the shape each question is about', () => {
    const scene = {
      image: 'x.png', width: 96, height: 96, shapes: [
        { shape: 'circle', color: 'red', cell: 0, position: 'top left', x: 0, y: 0, size: 20 },
        { shape: 'square', color: 'blue', cell: 4, position: 'center', x: 40, y: 40, size: 20 },
      ],
    } as const;
    const all = QUESTION_TYPES.flatMap((t) => candidateQuestions(structuredClone(scene) as never, t));
    const cellsOf = (q: string) => all.find((x) => x.question === q)!.cells;
    assert.deepEqual(cellsOf('Where is the blue square?'), [4]);
    assert.deepEqual(cellsOf('What color is the circle?'), [0]);
    assert.deepEqual(cellsOf('What shape is in the center?'), [4]);
    assert.deepEqual(cellsOf('Is there a red circle?'), [0]);
    assert.deepEqual(cellsOf('Is there a red square?'), []);
    assert.deepEqual(cellsOf('How many shapes are there?'), []);
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
    const v = w.dataSync();
    let mass = 0;
    batch.attentionTargets!.forEach((list, b) => {
      for (const { query, keys } of list) for (const k of keys) mass += v[((b * H + sup.heads[0]) * T + query) * S + k];
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
