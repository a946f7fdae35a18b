// Child process for checkpoint-crash.test.ts: writes checkpoint-1, checkpoint-2, … of a tiny model into
// OUT without end, printing each step number once it is written, until the parent kills it (kill -9).
//   node --import tsx test/train/checkpoint-writer-child.ts ROOT OUT
import path from 'node:path';
import { initBackend } from '../../src/backend/index.ts';
import { readConversations } from '../../src/train/jsonl.ts';
import { DATA_FILE } from '../../examples/shapes-demo/dataset.ts';
import { Idefics3Model } from '../../src/models/idefics3/model.ts';
import { VlmProcessor } from '../../src/processing/processor.ts';
import { buildExamples } from '../../src/train/examples.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { tinyConfig } from './tiny.ts';

const [root, out] = process.argv.slice(2);
if (!root || !out) throw new Error('usage: checkpoint-writer-child.ts ROOT OUT');
await initBackend();
const modelDir = path.join(root, 'model');
const processor = await VlmProcessor.load(modelDir);
const file = path.join(root, 'data', DATA_FILE);
const examples = await buildExamples(processor, await readConversations(file), file);
const trainer = new Trainer(await Idefics3Model.load(modelDir, { weights: 'float32' }), modelDir, examples, tinyConfig({ maxSteps: 1000 }), 0);
trainer.trainStep();
for (let k = 1; ; k++) {
  trainer.saveCheckpoint(path.join(out, `checkpoint-${k}`));
  process.stdout.write(`${k}\n`);
}
