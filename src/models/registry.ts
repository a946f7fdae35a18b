// config.json → model loader. One row per architecture; add rows as architectures land.
import fs from 'node:fs';
import path from 'node:path';
import { TfvlmError } from '../errors.ts';
import { Idefics3Model } from './idefics3/model.ts';
import { LlavaModel } from './llava/model.ts';

/** Any model loadModel returns; narrow with instanceof. */
export type LoadedModel = Idefics3Model | LlavaModel;

export interface RegistryEntry {
  /** config.json `model_type` values handled. */
  modelTypes: string[];
  /** config.json `architectures` values handled. */
  architectures: string[];
  load: (dir: string) => Promise<LoadedModel>;
}

export const REGISTRY: RegistryEntry[] = [
  {
    // SmolVLM2 checkpoints use model_type 'smolvlm' with the same layers (SmolVLMForConditionalGeneration).
    modelTypes: ['idefics3', 'smolvlm'],
    architectures: ['Idefics3ForConditionalGeneration', 'SmolVLMForConditionalGeneration'],
    load: (dir) => Idefics3Model.load(dir),
  },
  {
    modelTypes: ['llava'],
    architectures: ['LlavaForConditionalGeneration'],
    load: (dir) => LlavaModel.load(dir),
  },
];

export function findEntry(config: { model_type?: unknown; architectures?: unknown }): RegistryEntry | undefined {
  const archs = Array.isArray(config.architectures) ? (config.architectures as unknown[]) : [];
  return REGISTRY.find((e) => e.modelTypes.includes(String(config.model_type)))
    ?? REGISTRY.find((e) => archs.some((a) => e.architectures.includes(String(a))));
}

/** Loads the model in `dir` (config.json + safetensors), choosing the architecture from its config. */
export async function loadModel(dir: string): Promise<LoadedModel> {
  const configPath = path.join(dir, 'config.json');
  let config: { model_type?: unknown; architectures?: unknown };
  try {
    config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  } catch (e) {
    throw new TfvlmError(`${configPath}: cannot read config (${(e as Error).message})`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new TfvlmError(`${configPath}: must be a JSON object, got ${config === null ? 'null' : Array.isArray(config) ? 'an array' : typeof config}`);
  }
  const entry = findEntry(config);
  if (!entry) {
    const known = REGISTRY.flatMap((e) => e.modelTypes).join(', ');
    throw new TfvlmError(
      `${configPath}: model_type '${String(config.model_type)}' / architectures ${JSON.stringify(config.architectures)} ` +
      `is not supported (supported model_type: ${known})`,
    );
  }
  return entry.load(dir);
}
