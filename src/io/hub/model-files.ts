import path from 'node:path';
import { promises as fs } from 'node:fs';
import { TfvlmError } from '../../errors.ts';
import { checkRelativePath, isFile } from './cache.ts';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';

/** Every file tfvlm reads from a model repo, besides the shards an index names. Others are never fetched. */
export const MODEL_FILES: readonly string[] = [
  CONFIG_FILE,
  'generation_config.json',
  WEIGHTS_FILE,
  WEIGHTS_INDEX_FILE,
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'spiece.model',
  'preprocessor_config.json',
  'processor_config.json',
  'chat_template.json',
  'chat_template.jinja',
  'video_preprocessor_config.json',
];

/** The files of a repo listing tfvlm needs (shards excluded: they come from the index). */
export function selectModelFiles(repoFiles: readonly string[], where: string): string[] {
  const present = new Set(repoFiles);
  if (!present.has(CONFIG_FILE)) throw new TfvlmError(`${where} has no ${CONFIG_FILE}: not a transformers model repo`);
  if (!present.has(WEIGHTS_FILE) && !present.has(WEIGHTS_INDEX_FILE)) {
    throw new TfvlmError(`${where} has neither ${WEIGHTS_FILE} nor ${WEIGHTS_INDEX_FILE}: tfvlm reads safetensors weights only`);
  }
  // a repo with both keeps the single file; the index would only add a second copy of the weights
  const skipIndex = present.has(WEIGHTS_FILE);
  return MODEL_FILES.filter((f) => present.has(f) && !(skipIndex && f === WEIGHTS_INDEX_FILE));
}

/** The shard file names a model.safetensors.index.json names in its weight_map, in first-seen order. */
export function shardsOfIndex(indexText: string, where: string): string[] {
  let index: unknown;
  try {
    index = JSON.parse(indexText);
  } catch (e) {
    throw new TfvlmError(`${where}: not valid JSON (${(e as Error).message})`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new TfvlmError(`${where}: "weight_map" must be an object of tensor name → shard file`);
  }
  const shards = new Set<string>();
  for (const [tensor, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string') throw new TfvlmError(`${where}: weight_map["${tensor}"] is not a file name`);
    checkRelativePath(file, `${where}: weight_map["${tensor}"]`);
    shards.add(file);
  }
  if (shards.size === 0) throw new TfvlmError(`${where}: "weight_map" is empty`);
  return [...shards];
}

/** Files a local model folder lacks to be loadable: config.json and the weights (single file or index + shards). */
export async function missingModelFiles(dir: string): Promise<string[]> {
  const missing: string[] = [];
  if (!(await isFile(path.join(dir, CONFIG_FILE)))) missing.push(CONFIG_FILE);
  if (await isFile(path.join(dir, WEIGHTS_FILE))) return missing;
  const indexFile = path.join(dir, WEIGHTS_INDEX_FILE);
  if (!(await isFile(indexFile))) return [...missing, WEIGHTS_FILE];
  const shards = shardsOfIndex(await fs.readFile(indexFile, 'utf8'), indexFile);
  for (const shard of shards) if (!(await isFile(path.join(dir, ...shard.split('/'))))) missing.push(shard);
  return missing;
}
