// A tiny demo-layout Idefics3 with random weights and a few shapes conversations, for training tests.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readConversations } from '../../src/train/jsonl.ts';
import { DATA_FILE, writeShapesDataset } from '../../examples/shapes-demo/dataset.ts';
import { Idefics3Model } from '../../src/models/idefics3/model.ts';
import { writeRandomCheckpoint } from '../../src/models/random-weights.ts';
import { VlmProcessor } from '../../src/processing/processor.ts';
import { demoConfig, writeDemoModelFiles, type DemoModelSize } from '../../examples/shapes-demo/demo-model.ts';
import { buildExamples, type TrainExample } from '../../src/train/examples.ts';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../../src/train/trainer.ts';

export const TINY_SIZE: DemoModelSize = {
  imageSize: 32, patchSize: 8, visionHidden: 16, visionLayers: 1, visionHeads: 2,
  textHidden: 32, textLayers: 2, textHeads: 4, textKvHeads: 2, textIntermediate: 48, scaleFactor: 2,
};

export interface TinySetup {
  root: string;
  modelDir: string;
  examples: TrainExample[];
  processor: VlmProcessor;
}

/** Writes a tiny model (seeded random weights) and 2 images × 4 conversations into a temp folder. */
export async function tinySetup(opts: { tie?: boolean } = {}): Promise<TinySetup> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-train-test-'));
  const modelDir = path.join(root, 'model');
  writeDemoModelFiles(modelDir, TINY_SIZE);
  const config = demoConfig(TINY_SIZE);
  if (opts.tie) {
    config.tie_word_embeddings = true;
    (config.text_config as Record<string, unknown>).tie_word_embeddings = true;
  }
  fs.writeFileSync(path.join(modelDir, 'config.json'), JSON.stringify(config));
  writeRandomCheckpoint(config, modelDir, { seed: 3, std: 0.1 });
  const dataDir = path.join(root, 'data');
  await writeShapesDataset(dataDir, { n: 2, seed: 7, size: 32 });
  const processor = await VlmProcessor.load(modelDir);
  const file = path.join(dataDir, DATA_FILE);
  const examples = await buildExamples(processor, await readConversations(file), file);
  return { root, modelDir, examples, processor };
}

export function tinyConfig(over: Partial<TrainConfig> = {}): TrainConfig {
  return { ...DEFAULT_TRAIN_CONFIG, batchSize: 4, lr: 1e-2, warmupRatio: 0, seed: 1, ...over };
}

export function loadTiny(s: TinySetup): Promise<Idefics3Model> {
  return Idefics3Model.load(s.modelDir, { weights: 'float32' });
}
