import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { initBackend, tf } from '../../src/backend/index.ts';
import { GradientWorkers } from '../../src/train/gradient-workers.ts';
import type { TrainExample } from '../../src/train/examples.ts';
import { splitEvenly, Trainer, type TrainConfig } from '../../src/train/trainer.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { loadTiny, tinyConfig, tinySetup, type TinySetup } from './tiny.ts';

let s: TinySetup;

before(async () => {
  await initBackend();
  s = await tinySetup({ tie: true });
});
after(() => fs.rmSync(s.root, { recursive: true, force: true }));

/** Every weight of the single-process run is in the parallel one, within the data-parallel tolerance. */
function assertSameWeights(parallel: Record<string, Float32Array>, single: Record<string, Float32Array>): void {
  for (const [name, v] of Object.entries(single)) {
    const p = parallel[name];
    assert.ok(p, `${name} in the parallel run`);
    assertClose(p, v, TOLERANCE.dataParallelWeights, name);
  }
}

async function run(
  config: TrainConfig, steps: number, workers?: GradientWorkers, examples: readonly TrainExample[] = s.examples,
): Promise<{ losses: number[]; values: Record<string, Float32Array>; counts: number[] }> {
  const model = await loadTiny(s);
  const trainer = new Trainer(model, s.modelDir, examples, config, 0);
  trainer.attachWorkers(workers);
  const losses: number[] = [];
  const counts: number[] = [];
  for (let i = 0; i < steps; i++) {
    losses.push((await trainer.trainStepAsync()).loss);
    counts.push(tf.memory().numTensors);
  }
  const values = trainer.trainableModel.values();
  trainer.dispose();
  model.dispose();
  return { losses, values, counts };
}

/** The trainer's frozen-weight fingerprints for `config`, optionally after changing the model in memory. */
async function frozenFingerprints(config: TrainConfig, change?: (trainer: Trainer) => void): Promise<Record<string, number>> {
  const model = await loadTiny(s);
  const trainer = new Trainer(model, s.modelDir, s.examples, config, 0);
  change?.(trainer);
  const out = trainer.trainableModel.frozenFingerprints();
  trainer.dispose();
  model.dispose();
  return out;
}

async function workerInit(config: TrainConfig) {
  return { baseDir: s.modelDir, frozenFingerprints: await frozenFingerprints(config), settings: config, lossWeighting: config.lossWeighting ?? 'token', padTokenId: 0 };
}

describe('data-parallel training (gradient workers)', () => {
  it('splits a batch into contiguous, nearly equal parts', () => {
    assert.deepEqual(splitEvenly([1, 2, 3, 4, 5], 2), [[1, 2, 3], [4, 5]]);
    assert.deepEqual(splitEvenly([1], 3), [[1], [], []]);
  });

  for (const mode of ['all', 'lora'] as const) {
    it(`takes the same steps as one process (${mode}, grad-accum 2, turn weighting)`, async () => {
      // Tolerance: the same sums in a different order (f32), compounded over 3 AdamW steps.
      const config = tinyConfig({ trainable: mode, batchSize: 3, gradAccum: 2, lossWeighting: 'turn', lr: mode === 'lora' ? 3e-2 : 1e-2 });
      const single = await run(config, 3);
      const workers = await GradientWorkers.start(1, await workerInit(config));
      try {
        const parallel = await run(config, 3, workers);
        assertClose(Float32Array.from(parallel.losses), Float32Array.from(single.losses), TOLERANCE.dataParallelLosses, 'losses');
        assertSameWeights(parallel.values, single.values);
        assert.deepEqual(parallel.counts.slice(1), parallel.counts.slice(1).map(() => parallel.counts[1]), `tensor counts ${parallel.counts}`);
      } finally {
        await workers.close();
      }
    });
  }

  it('takes the same steps as one process with attention supervision (targets in some examples only)', async () => {
    // Every other example: its first answer should look at its first image token. The shards then
    // hold different numbers of targets, so a per-shard mean would not add up to the step's.
    const examples = s.examples.map((e, i) => {
      if (i % 2) return e;
      const query = [...e.assistant_mask].findIndex((m, t) => t > 0 && m && !e.assistant_mask[t - 1]) - 1;
      return { ...e, attentionTargets: [{ query, keys: [e.input_ids.indexOf(s.processor.imageTokenId)] }] };
    });
    const config = tinyConfig({ batchSize: 3, gradAccum: 2, attentionSupervision: { layer: 1, heads: [0, 2], weight: 2 } });
    const single = await run(config, 3, undefined, examples);
    const workers = await GradientWorkers.start(1, await workerInit(config));
    try {
      const parallel = await run(config, 3, workers, examples);
      assertClose(Float32Array.from(parallel.losses), Float32Array.from(single.losses), TOLERANCE.dataParallelLosses, 'losses');
      assertSameWeights(parallel.values, single.values);
    } finally {
      await workers.close();
    }
  });

  it('reports a worker that cannot load its model by the folder at fault', async () => {
    const config = tinyConfig();
    await assert.rejects(GradientWorkers.start(1, { ...(await workerInit(config)), baseDir: `${s.root}/missing` }), /gradient worker 0: .*missing/);
  });

  it('refuses to start when a frozen weight of the trainer\'s model differs from the folder the workers load', async () => {
    const config = tinyConfig({ trainable: 'projector' });
    const key = 'model.vision_model.post_layernorm.weight';
    const changed = await frozenFingerprints(config, (trainer) => {
      const slot = trainer.trainableModel.slots.find((x) => x.key === key)!;
      const old = slot.get();
      slot.set(tf.add(old, 0.5));
      old.dispose();
    });
    const init = await workerInit(config);
    assert.ok(Object.keys(init.frozenFingerprints).length > 0 && init.frozenFingerprints[key] !== changed[key]);
    await assert.rejects(GradientWorkers.start(1, { ...init, frozenFingerprints: changed }), new RegExp(`gradient worker 0: .*frozen weight ${key.replace(/\./g, '\\.')} differs`));
    const workers = await GradientWorkers.start(1, init);
    await workers.close();
  });
});
