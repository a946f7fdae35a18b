// What `tfvlm batch` works through: the items of a JSONL file (one `{id, image | images, prompt?,
// question?}` per line, image paths relative to the file's folder) or of a folder of images (every image
// file under it, recursively, in name order; id = the path relative to the folder). Both are read as a
// stream, never whole: a million-line input holds one line in memory at a time.
import fs from 'node:fs';
import path from 'node:path';
import { TfvlmError } from '../errors.ts';
import { readLines } from './jsonl-lines.ts';

/** One unit of work: one request, one result line. */
export interface BatchItem {
  id: string;
  /** The images as the input names them (a JSONL's strings as written; for a folder, the folder joined with the relative path). */
  images: string[];
  /** Given as "image" (one) rather than "images": the result line uses the same key. */
  single: boolean;
  /** The images to load: paths resolved against the JSONL file's folder (data: URIs as they are). */
  sources: string[];
  /** The item's own instruction, over --prompt / --question. */
  prompt?: string;
  question?: string;
  /** Where the item comes from: `file:line`, or the image's path for a folder. */
  where: string;
}

export type BatchInput = { kind: 'jsonl'; file: string } | { kind: 'dir'; dir: string };

/** A bad input line: its message starts with `file:line:` and names the field. */
export class BatchInputError extends TfvlmError {
  override name = 'BatchInputError';
}

/** The image files a folder input takes (by extension, case-insensitive). */
export const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.gif', '.bmp', '.webp']);

const FIELDS = ['id', 'image', 'images', 'prompt', 'question'];

/** A folder is read as a folder of images, anything else as JSONL. */
export function openInput(input: string): BatchInput {
  const stat = fs.statSync(input, { throwIfNoEntry: false });
  if (!stat) throw new TfvlmError(`--input ${input}: no such file or folder`);
  return stat.isDirectory() ? { kind: 'dir', dir: input } : { kind: 'jsonl', file: input };
}

/** The items of the input, in order. A bad JSONL line throws a BatchInputError naming file:line. */
export async function* inputItems(input: BatchInput): AsyncGenerator<BatchItem> {
  if (input.kind === 'dir') {
    yield* folderItems(input.dir);
    return;
  }
  for await (const raw of inputLines(input.file)) {
    if ('item' in raw) yield raw.item;
    else throw raw.error;
  }
}

/** Each non-blank JSONL line as its item or its error (so a scan can list every bad line at once). */
export async function* inputLines(file: string): AsyncGenerator<{ item: BatchItem; line: number } | { error: BatchInputError; line: number }> {
  const base = path.dirname(path.resolve(file));
  for await (const line of readLines(file)) {
    if (line.text.trim() === '') continue;
    try {
      yield { item: parseItemLine(line.text, `${file}:${line.number}`, base), line: line.number };
    } catch (e) {
      if (!(e instanceof BatchInputError)) throw e;
      yield { error: e, line: line.number };
    }
  }
}

const describeValue = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'string' ? `"${v}"` : typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`);

/** One JSONL line → its item; image paths resolve against `baseDir`. */
export function parseItemLine(text: string, where: string, baseDir: string): BatchItem {
  const fail = (message: string): never => { throw new BatchInputError(`${where}: ${message}`); };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return fail(`not JSON (${(e as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return fail(`expected an object {"id": …, "image": …}, got ${describeValue(value)}`);
  }
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!FIELDS.includes(key)) fail(`unknown field "${key}" (fields: ${FIELDS.join(', ')})`);
  }
  const id = o.id;
  if (id === undefined) fail('"id" is missing');
  if (typeof id === 'number') fail(`"id" must be a string: write "${id}", in quotes`);
  if (typeof id !== 'string' || id === '') fail(`"id" must be a non-empty string, got ${describeValue(id)}`);
  if (o.image !== undefined && o.images !== undefined) fail('give "image" or "images", not both');
  let images: string[];
  if (o.image !== undefined) {
    if (typeof o.image !== 'string' || o.image === '') fail(`"image" must be a non-empty string (a path), got ${describeValue(o.image)}`);
    images = [o.image as string];
  } else if (o.images !== undefined) {
    if (!Array.isArray(o.images) || o.images.length === 0) fail(`"images" must be a non-empty array of paths, got ${describeValue(o.images)}`);
    images = o.images as string[];
    images.forEach((p, i) => {
      if (typeof p !== 'string' || p === '') fail(`"images"[${i}] must be a non-empty string (a path), got ${describeValue(p)}`);
    });
  } else {
    return fail('"image" (a path) or "images" (an array of paths) is missing');
  }
  for (const key of ['prompt', 'question'] as const) {
    const v = o[key];
    if (v !== undefined && (typeof v !== 'string' || v.trim() === '')) fail(`"${key}" must be a non-empty string, got ${describeValue(v)}`);
  }
  if (o.prompt !== undefined && o.question !== undefined) fail('give "prompt" or "question", not both');
  return {
    id: id as string,
    images,
    single: o.image !== undefined,
    sources: images.map((p) => resolveSource(p, baseDir)),
    ...(o.prompt !== undefined ? { prompt: o.prompt as string } : {}),
    ...(o.question !== undefined ? { question: o.question as string } : {}),
    where,
  };
}

/** A path relative to the JSONL file's folder; data: URIs (and URLs, which loading refuses by name) unchanged. */
function resolveSource(p: string, baseDir: string): string {
  return /^(data:|https?:\/\/)/i.test(p) ? p : path.resolve(baseDir, p);
}

/**
 * Every image file under `dir` (recursively; names starting with '.' skipped; symlinked files followed,
 * symlinked folders not), depth first in code-point order of the names; id = the path relative to
 * `dir` with '/' separators. One folder's names are in memory at a time.
 */
export async function* folderItems(dir: string): AsyncGenerator<BatchItem> {
  async function* walk(rel: string): AsyncGenerator<BatchItem> {
    const full = path.join(dir, rel);
    const entries = (await fs.promises.readdir(full, { withFileTypes: true }))
      .filter((e) => !e.name.startsWith('.'))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const relPath = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        yield* walk(relPath);
        continue;
      }
      if (!IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase())) continue;
      if (e.isSymbolicLink() && !fs.statSync(path.join(full, e.name), { throwIfNoEntry: false })?.isFile()) continue;
      if (!e.isFile() && !e.isSymbolicLink()) continue;
      const shown = path.join(dir, relPath);
      yield { id: relPath, images: [shown], single: true, sources: [path.resolve(shown)], where: shown };
    }
  }
  yield* walk('');
}
