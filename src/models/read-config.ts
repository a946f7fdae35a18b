// A model folder's config.json as raw JSON, with an error naming the file when it cannot be read.
import { TfvlmError } from '../errors.ts';
import { host } from '../io/host.ts';

export function readConfigJson(dir: string): { raw: unknown; path: string } {
  const configPath = host().join(dir, 'config.json');
  try {
    return { raw: JSON.parse(host().readText(configPath)), path: configPath };
  } catch (e) {
    throw new TfvlmError(`${configPath}: cannot read config (${(e as Error).message})`);
  }
}
