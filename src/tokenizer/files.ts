import { TfvlmError } from '../errors.ts';
import { host } from '../io/host.ts';

/** Reads `dir/name` as JSON; a missing optional file gives undefined, anything unreadable a TfvlmError naming it. */
export async function readJsonFile(dir: string, name: string, required: boolean): Promise<unknown> {
  const text = await readTextFile(dir, name, required);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TfvlmError(`${host().join(dir, name)}: not valid JSON (${(err as Error).message})`);
  }
}

export async function readTextFile(dir: string, name: string, required: boolean): Promise<string | undefined> {
  const file = host().join(dir, name);
  try {
    return await host().readTextAsync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return undefined;
    if (code === 'ENOENT') throw new TfvlmError(`${file}: file not found (a tokenizer folder needs ${name})`);
    if (code === 'EISDIR') throw new TfvlmError(`${file}: is a directory, expected a file`);
    throw new TfvlmError(`${file}: cannot read (${(err as Error).message})`);
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
