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
    const { loss, grads } = replica.accumulateGradients(batches, (b) => b.supervised / m.supervised);
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

try {
  await initBackend();
  installTrainingGradients();
  const replica = new TrainableModel(await Idefics3Model.load(init.baseDir), init.settings);
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
