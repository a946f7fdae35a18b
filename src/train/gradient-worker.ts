// Body of a data-parallel gradient worker (started by GradientWorkers): a replica of the model on
// its own one-thread backend. Each step it takes the trainable values and its share of the
// examples, and returns the share-weighted loss and gradients.
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, tf } from '../backend/index.ts';
import { Idefics3Model } from '../models/idefics3/model.ts';
import { collate, disposeBatch } from './batch.ts';
import { installTrainingGradients } from './gradients.ts';
import type { WorkerInit, WorkerReply, WorkerStep } from './gradient-workers.ts';
import { TrainableModel } from './trainable-model.ts';

const port = parentPort!;
const init = workerData as WorkerInit;

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

function computeStep(replica: TrainableModel, m: WorkerStep): void {
  replica.setValues(m.values);
  const batches = m.shards.map((s) => collate(s, init.padTokenId, init.lossWeighting));
  try {
    const { loss, grads } = replica.accumulateGradients(batches, m.totals);
    const out: Record<string, Float32Array> = {};
    try {
      for (const [name, t] of Object.entries(grads)) out[name] = t.dataSync() as Float32Array;
    } finally {
      tf.dispose(Object.values(grads));
    }
    reply({ type: 'grads', id: m.id, loss, grads: out }, Object.values(out).map((a) => a.buffer as ArrayBuffer));
  } finally {
    batches.forEach(disposeBatch);
  }
}

/** The replica's frozen weights (from baseDir) must be the trainer's. */
function checkFrozenWeights(replica: TrainableModel): void {
  const own = replica.frozenFingerprints();
  const expected = init.frozenFingerprints;
  for (const key of new Set([...Object.keys(own), ...Object.keys(expected)])) {
    if (own[key] !== expected[key]) {
      throw new Error(`frozen weight ${key} differs between the trainer's model and ${init.baseDir}: `
        + 'workers load frozen weights from the folder, so save the model there first (or train without workers)');
    }
  }
}

try {
  await initBackend();
  installTrainingGradients();
  const replica = new TrainableModel(await Idefics3Model.load(init.baseDir, { weights: 'float32' }), init.settings);
  checkFrozenWeights(replica);
  port.on('message', (m: WorkerStep) => {
    try {
      computeStep(replica, m);
    } catch (e) {
      reply({ type: 'error', id: m.id, message: (e as Error).message });
    }
  });
  reply({ type: 'ready' });
} catch (e) {
  reply({ type: 'error', message: `gradient worker could not start: ${(e as Error).message}` });
}
