import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { initBackend, tf } from '../../src/backend/index.ts';
import { Idefics3Model } from '../../src/models/idefics3/model.ts';
import { collate, disposeBatch } from '../../src/train/batch.ts';
import { LoraAdapter } from '../../src/train/lora.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { Vlm } from '../../src/engine.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { loadTiny, tinyConfig, tinySetup, type TinySetup } from './tiny.ts';

let s: TinySetup;

before(async () => {
  await initBackend();
  s = await tinySetup();
});
after(() => fs.rmSync(s.root, { recursive: true, force: true }));

function logitsOf(model: Idefics3Model, attach?: () => () => void): Float32Array {
  const b = collate(s.examples.slice(0, 3), 0);
  try {
    return tf.tidy(() => {
      const detach = attach?.();
      try {
        return model.forward({ input_ids: b.input_ids, attention_mask: b.attention_mask, pixel_values: b.pixel_values,
          pixel_attention_mask: b.pixel_attention_mask }).logits.dataSync() as Float32Array;
      } finally {
        detach?.();
      }
    });
  } finally {
    disposeBatch(b);
  }
}

describe('training', () => {
  it('lowers the loss on a fixed batch (all weights) without leaking tensors per step', async () => {
    const model = await loadTiny(s);
    const trainer = new Trainer(model, s.modelDir, s.examples.slice(0, 4), tinyConfig({ maxSteps: 8 }), 0);
    const losses: number[] = [];
    const counts: number[] = [];
    for (let i = 0; i < 8; i++) {
      losses.push(trainer.trainStep().loss);
      counts.push(tf.memory().numTensors);
    }
    assert.ok(losses[7]! < 0.7 * losses[0]!, `loss ${losses[0]} → ${losses[7]}`);
    assert.deepEqual(counts.slice(1), counts.slice(1).map(() => counts[1]), `tensor counts ${counts}`);
    trainer.dispose();
    model.dispose();
  });

  it('runs on the active backend with gradient accumulation and LoRA (no missing gradient kernels)', async () => {
    const model = await loadTiny(s);
    const trainer = new Trainer(model, s.modelDir, s.examples, tinyConfig({ trainable: 'lora', batchSize: 2, gradAccum: 2, lr: 3e-2 }), 0);
    const first = trainer.trainStep().loss;
    let last = first;
    for (let i = 0; i < 5; i++) last = trainer.trainStep().loss;
    assert.ok(Number.isFinite(last) && last < first, `loss ${first} → ${last}`);
    trainer.dispose();
    model.dispose();
  });

  it('resume continues the same loss curve (N steps = N/2 + checkpoint + resume + N/2)', async () => {
    const cfg = tinyConfig({ maxSteps: 4, batchSize: 2, weightDecay: 0.1, warmupSteps: 1 });
    const straight = await loadTiny(s);
    const t1 = new Trainer(straight, s.modelDir, s.examples, cfg, 0);
    const full = Array.from({ length: 4 }, () => t1.trainStep().loss);
    t1.dispose();
    straight.dispose();

    const first = await loadTiny(s);
    const t2 = new Trainer(first, s.modelDir, s.examples, cfg, 0);
    const part = [t2.trainStep().loss, t2.trainStep().loss];
    const ckpt = path.join(s.root, 'ckpt-2');
    t2.saveCheckpoint(ckpt);
    t2.dispose();
    first.dispose();
    const second = await loadTiny(s);
    const t3 = new Trainer(second, s.modelDir, s.examples, cfg, 0);
    t3.resume(ckpt);
    assert.equal(t3.step, 2);
    part.push(t3.trainStep().loss, t3.trainStep().loss);
    t3.dispose();
    second.dispose();
    assertClose(part, full, TOLERANCE.resumedLosses, 'loss curve');
  });

  it('checkpoint round trip: saved folder loads with the normal loader and gives the same logits', async () => {
    const model = await loadTiny(s);
    const trainer = new Trainer(model, s.modelDir, s.examples, tinyConfig({ maxSteps: 2 }), 0);
    trainer.trainStep();
    trainer.finish();
    const expected = logitsOf(model);
    const dir = path.join(s.root, 'roundtrip');
    trainer.saveModel(dir);
    for (const f of ['config.json', 'tokenizer.json', 'chat_template.json', 'preprocessor_config.json', 'model.safetensors']) {
      assert.ok(fs.existsSync(path.join(dir, f)), f);
    }
    const loaded = await Idefics3Model.load(dir, { weights: 'float32' });
    assertClose(logitsOf(loaded), expected, TOLERANCE.exact, 'logits after reload');
    loaded.dispose();
    trainer.dispose();
    model.dispose();
  });

  it('LoRA: merged weights give the logits of the unmerged adapter; PEFT files reload', async () => {
    const model = await loadTiny(s);
    const trainer = new Trainer(model, s.modelDir, s.examples, tinyConfig({ trainable: 'lora', lr: 5e-2, loraRank: 4, loraAlpha: 8 }), 0);
    trainer.trainStep();
    trainer.trainStep();
    const base = logitsOf(model);
    const adapted = logitsOf(model, () => trainer.lora!.attach());
    assert.ok(adapted.some((v, i) => Math.abs(v - base[i]!) > 1e-4), 'the adapter changes the logits');

    const adapterDir = path.join(s.root, 'adapter');
    trainer.saveModel(adapterDir);
    const cfg = JSON.parse(fs.readFileSync(path.join(adapterDir, 'adapter_config.json'), 'utf8'));
    assert.equal(cfg.peft_type, 'LORA');
    assert.equal(cfg.r, 4);
    const mergedDir = path.join(s.root, 'merged');
    trainer.saveModel(mergedDir, { merge: true });
    assertClose(logitsOf(model), base, TOLERANCE.exact, 'base weights untouched by saving merged');

    const merged = await Idefics3Model.load(mergedDir, { weights: 'float32' });
    assertClose(logitsOf(merged), adapted, TOLERANCE.float32, 'merged vs unmerged');
    merged.dispose();

    const fresh = await loadTiny(s);
    const reloaded = LoraAdapter.load(fresh.slots, adapterDir);
    assert.ok(reloaded.modules.some((m) => m.name === 'model.text_model.layers.0.self_attn.q_proj'));
    assertClose(logitsOf(fresh, () => reloaded.attach()), adapted, TOLERANCE.float32, 'reloaded adapter');
    reloaded.merge();
    assertClose(logitsOf(fresh), adapted, TOLERANCE.float32, 'merge in place');

    // Applied at load, by the library and the CLI; the adapter folder given as the model points to --adapter.
    const vlm = await Vlm.load(s.modelDir, { adapter: adapterDir });
    assertClose(logitsOf(vlm.model as Idefics3Model), adapted, TOLERANCE.float32, 'Vlm.load({ adapter })');
    vlm.dispose();
    await assert.rejects(Vlm.load(s.modelDir, { adapter: adapterDir, dtype: 'q4' }), /an adapter is merged into float32 weights.*--dtype q4/);
    await assert.rejects(Vlm.load(adapterDir), /is a LoRA adapter, not a model: load its base model with --adapter .*adapter/);
    const bin = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
    const image = fileURLToPath(new URL('../../examples/assets/shapes.png', import.meta.url));
    const cli = spawnSync(process.execPath, [bin, 'describe', image, '--model', s.modelDir, '--adapter', adapterDir, '--max-new-tokens', '3', '--json', '-q'], { encoding: 'utf8' });
    assert.equal(cli.status, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).generated_ids.length > 0, true);
    reloaded.dispose();
    fresh.dispose();
    trainer.dispose();
    model.dispose();
  });

  it('group-by-length batches the same examples per epoch, longest first within each run of 50 steps', async () => {
    const model = await loadTiny(s);
    const plain = new Trainer(model, s.modelDir, s.examples, tinyConfig({ batchSize: 2, trainable: 'projector' }), 0);
    const grouped = new Trainer(model, s.modelDir, s.examples, tinyConfig({ batchSize: 2, trainable: 'projector', groupByLength: true }), 0);
    for (const epoch of [0, 1]) {
      const steps = Array.from({ length: plain.stepsPerEpoch }, (_, k) => epoch * plain.stepsPerEpoch + k);
      const a = steps.flatMap((k) => plain.microBatch(k, 0));
      const b = steps.flatMap((k) => grouped.microBatch(k, 0));
      assert.deepEqual(new Set(b), new Set(a));
      const lengths = b.map((e) => e.input_ids.length);
      assert.deepEqual(lengths, [...lengths].sort((x, y) => y - x), `epoch ${epoch}: ${lengths}`);
      const unsorted = a.map((e) => e.input_ids.length);
      assert.notDeepEqual(unsorted, [...unsorted].sort((x, y) => y - x), 'the plain order is already sorted: the check above proves nothing');
    }
    assert.notDeepEqual(s.examples.map((e) => e.input_ids.length), s.examples.map(() => s.examples[0]!.input_ids.length), 'the fixture needs examples of different lengths');
    plain.dispose();
    grouped.dispose();
    model.dispose();
  });

  it('projector mode trains only the connector', async () => {
    const model = await loadTiny(s);
    const trainer = new Trainer(model, s.modelDir, s.examples, tinyConfig({ trainable: 'projector' }), 0);
    assert.deepEqual(trainer.params.map((p) => p.name), ['model.connector.modality_projection.proj.weight']);
    trainer.trainStep();
    trainer.dispose();
    model.dispose();
  });

  it('freeze keeps the matching weights exactly as loaded and trains the rest', async () => {
    const model = await loadTiny(s);
    const trainer = new Trainer(model, s.modelDir, s.examples, tinyConfig({ freeze: String.raw`^model\.vision_model\.` }), 0);
    const names = trainer.params.map((p) => p.name);
    assert.ok(names.length > 0 && names.every((n) => !n.startsWith('model.vision_model.')), names.join(', '));
    assert.ok(names.includes('model.connector.modality_projection.proj.weight'));
    const slots = model.slots;
    const snapshot = (frozen: boolean) => new Map(slots.filter((sl) => sl.key.startsWith('model.vision_model.') === frozen)
      .map((sl) => [sl.key, tf.tidy(() => sl.get().dataSync().slice())]));
    const frozenBefore = snapshot(true);
    const trainedBefore = snapshot(false);
    trainer.trainStep();
    for (const [key, values] of snapshot(true)) assert.deepEqual(values, frozenBefore.get(key), key);
    const changed = [...snapshot(false)].filter(([key, values]) => values.some((v, i) => v !== trainedBefore.get(key)![i]));
    assert.ok(changed.length > 0, 'no trainable weight changed');
    trainer.dispose();
    model.dispose();
  });
});

describe('training with tied embeddings', () => {
  it('trains embed_tokens through the head and saves no lm_head', async () => {
    const t = await tinySetup({ tie: true });
    try {
      const model = await loadTiny(t);
      const trainer = new Trainer(model, t.modelDir, t.examples.slice(0, 4), tinyConfig({ maxSteps: 6 }), 0);
      assert.ok(!trainer.params.some((p) => p.name === 'lm_head.weight'));
      const losses = Array.from({ length: 6 }, () => trainer.trainStep().loss);
      assert.ok(losses[5]! < losses[0]!, `loss ${losses}`);
      trainer.finish();
      const dir = path.join(t.root, 'tied');
      trainer.saveModel(dir);
      const b = collate(t.examples.slice(0, 2), 0);
      const run = (m: Idefics3Model) => tf.tidy(() => m.forward({ input_ids: b.input_ids, attention_mask: b.attention_mask,
        pixel_values: b.pixel_values, pixel_attention_mask: b.pixel_attention_mask }).logits.dataSync() as Float32Array);
      const loaded = await Idefics3Model.load(dir, { weights: 'float32' });
      assertClose(run(loaded), run(model), TOLERANCE.exact, 'tied reload');
      disposeBatch(b);
      loaded.dispose();
      trainer.dispose();
      model.dispose();
    } finally {
      fs.rmSync(t.root, { recursive: true, force: true });
    }
  });
});
