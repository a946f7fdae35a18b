// A model folder's config.json as raw JSON, with an error naming the file when it cannot be read.
import fs from 'node:fs';
import path from 'node:path';
import { TfvlmError } from '../errors.ts';

export function readConfigJson(dir: string): { raw: unknown; path: string } {
  const configPath = path.join(dir, 'config.json');
  try {
    return { raw: JSON.parse(fs.readFileSync(configPath, 'utf8')), path: configPath };
  } catch (e) {
    throw new TfvlmError(`${configPath}: cannot read config (${(e as Error).message})`);
  }
}
