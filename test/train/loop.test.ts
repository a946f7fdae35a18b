import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { initBackend } from '../../src/backend/index.ts';
import { formatDuration, runTraining } from '../../src/train/loop.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { loadTiny, tinyConfig, tinySetup, type TinySetup } from './tiny.ts';

let s: TinySetup;

before(async () => {
  await initBackend();
  s = await tinySetup();
});
after(() => fs.rmSync(s.root, { recursive: true, force: true }));

describe('training loop', () => {
  it('prints progress with loss, tokens/s and ETA, evaluates at the end and checkpoints every N steps', async () => {
    const model = await loadTiny(s);
    const trainer = new Trainer(model, s.modelDir, s.examples, tinyConfig({ maxSteps: 3, batchSize: 2 }), 0);
    const lines: string[] = [];
    const r = await runTraining(trainer, { outDir: path.join(s.root, 'run'), evalExamples: s.examples.slice(0, 2), saveEvery: 2, logEvery: 1, log: (l) => lines.push(l) });
    assert.equal(r.steps, 3);
    const [first] = lines;
    assert.ok(first !== undefined, 'a progress line');
    assert.match(first, /^step 1\/3 {2}loss \d+\.\d{4} {2}lr .* tok\/s {2}ETA \d+:\d\d$/);
    assert.match(lines.at(-1)!, /^eval step 3: loss/);
    assert.ok(fs.existsSync(path.join(s.root, 'run', 'checkpoint-2', 'trainer_state.json')));
    assert.ok(r.tokensPerSecond > 0 && Number.isFinite(r.finalLoss));
    trainer.dispose();
    model.dispose();
  });

  it('a time budget places steps on the schedule by elapsed time', async () => {
    const model = await loadTiny(s);
    const trainer = new Trainer(model, s.modelDir, s.examples, tinyConfig({ maxSteps: 100, batchSize: 2 }), 0);
    assert.equal(trainer.trainStep(0.5).lr, 0.5 * 1e-2 * (1 + Math.cos(Math.PI * 0.5)));
    assert.equal(trainer.trainStep(1).lr, 0);
    trainer.dispose();
    model.dispose();
    assert.equal(formatDuration(3725), '1:02:05');
    assert.equal(formatDuration(65), '1:05');
  });
});
