// What travels through Redis: a job's data (one batch item, the instruction defaults and the generation
// options, all plain JSON) and its return value (the item's result or error line). The collector builds
// payloads; a worker checks each one before it runs it, and the collector checks each return value
// before it writes it, so a job from another program or another tfvlm version fails by name.
import { createHash } from 'node:crypto';
import type { GenerateCallOptions } from '../engine.ts';
import type { BatchItem } from '../batch/input.ts';
import type { ErrorLine, ItemDefaults, ResultLine } from '../batch/item.ts';

/** Bumped when the payload's shape changes; a worker refuses other versions. */
export const PAYLOAD_VERSION = 1;

/** The item as the worker needs it: image paths as the input wrote them (for the line) and as absolute paths (to load); not where it was read. */
export type PayloadItem = Omit<BatchItem, 'where'>;

/** The generation options a job carries: the JSON-safe ones the batch command sets. */
export type PayloadGeneration = Pick<GenerateCallOptions,
  'maxNewTokens' | 'doSample' | 'temperature' | 'topK' | 'topP' | 'minP' | 'repetitionPenalty' | 'seed' | 'stopStrings' | 'imageSplitting'>;

export interface JobPayload {
  tfvlm: typeof PAYLOAD_VERSION;
  item: PayloadItem;
  defaults: ItemDefaults;
  generation: PayloadGeneration;
}

const NUMBER_OPTIONS = ['maxNewTokens', 'temperature', 'topK', 'topP', 'minP', 'repetitionPenalty', 'seed'] as const;
const BOOLEAN_OPTIONS = ['doSample', 'imageSplitting'] as const;
const GENERATION_KEYS: string[] = [...NUMBER_OPTIONS, ...BOOLEAN_OPTIONS, 'stopStrings'];

/**
 * The BullMQ job id of an item: `item-` + its id with '%' and ':' percent-encoded. Deterministic (so
 * adding an item twice adds one job), and never what BullMQ refuses: an integer, or a ':'.
 */
export function jobIdOf(itemId: string): string {
  return `item-${itemId.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'))}`;
}

/** The generation options a payload keeps: undefined ones dropped, anything not JSON-safe refused. */
export function payloadGeneration(options: GenerateCallOptions): PayloadGeneration {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (!GENERATION_KEYS.includes(key)) throw new Error(`generation option "${key}" cannot be sent to queue workers`);
    out[key] = value;
  }
  return out as PayloadGeneration;
}

export function makePayload(item: BatchItem, defaults: ItemDefaults, generation: PayloadGeneration): JobPayload {
  return {
    tfvlm: PAYLOAD_VERSION,
    item: {
      id: item.id, images: item.images, single: item.single, sources: item.sources,
      ...(item.prompt !== undefined ? { prompt: item.prompt } : {}),
      ...(item.question !== undefined ? { question: item.question } : {}),
    },
    defaults: {
      ...(defaults.prompt !== undefined ? { prompt: defaults.prompt } : {}),
      ...(defaults.question !== undefined ? { question: defaults.question } : {}),
    },
    generation,
  };
}

/** A digest of a payload: a job left in Redis by a run with other options is told apart from this run's. */
export function payloadDigest(payload: JobPayload): string {
  return createHash('sha256').update(JSON.stringify(payload)).digest('base64url').slice(0, 22);
}

/** A job whose data is not a tfvlm payload of this version. */
export class PayloadError extends Error {
  override name = 'PayloadError';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonEmptyString = (v: unknown): v is string => typeof v === 'string' && v !== '';

/** Checks a job's data and returns it as the item (with `where` naming the job) and its options. */
export function parsePayload(data: unknown, jobId: string): { item: BatchItem; defaults: ItemDefaults; generation: PayloadGeneration } {
  const fail = (why: string): never => {
    throw new PayloadError(`job ${jobId}: ${why}`);
  };
  if (!isObject(data)) return fail('data is not an object');
  if (data.tfvlm !== PAYLOAD_VERSION) {
    return fail(data.tfvlm === undefined ? 'not a tfvlm batch job (no "tfvlm" version field)'
      : `payload version ${String(data.tfvlm)}, this worker reads version ${PAYLOAD_VERSION}: run the same tfvlm version on the collector and the workers`);
  }
  const { item, defaults, generation } = data;
  if (!isObject(item)) return fail('"item" is not an object');
  if (!nonEmptyString(item.id)) fail('"item.id" is not a non-empty string');
  if (jobIdOf(item.id as string) !== jobId) fail(`"item.id" ${JSON.stringify(item.id)} does not match the job id`);
  for (const key of ['images', 'sources'] as const) {
    const list = item[key];
    if (!Array.isArray(list) || list.length === 0 || !list.every(nonEmptyString)) fail(`"item.${key}" is not a non-empty array of strings`);
  }
  if ((item.images as string[]).length !== (item.sources as string[]).length) fail('"item.images" and "item.sources" differ in length');
  if (typeof item.single !== 'boolean') fail('"item.single" is not a boolean');
  if (!isObject(defaults)) return fail('"defaults" is not an object');
  for (const [where, o] of [['item', item], ['defaults', defaults]] as const) {
    for (const key of ['prompt', 'question'] as const) {
      if (o[key] !== undefined && !nonEmptyString(o[key])) fail(`"${where}.${key}" is not a non-empty string`);
    }
  }
  if (!isObject(generation)) return fail('"generation" is not an object');
  for (const [key, value] of Object.entries(generation)) {
    if ((NUMBER_OPTIONS as readonly string[]).includes(key)) {
      if (typeof value !== 'number' || !Number.isFinite(value)) fail(`"generation.${key}" is not a finite number`);
    } else if ((BOOLEAN_OPTIONS as readonly string[]).includes(key)) {
      if (typeof value !== 'boolean') fail(`"generation.${key}" is not a boolean`);
    } else if (key === 'stopStrings') {
      if (!Array.isArray(value) || !value.every((s) => typeof s === 'string')) fail('"generation.stopStrings" is not an array of strings');
    } else {
      fail(`unknown generation option "${key}"`);
    }
  }
  const parsed: BatchItem = {
    id: item.id as string, images: item.images as string[], single: item.single as boolean, sources: item.sources as string[],
    ...(item.prompt !== undefined ? { prompt: item.prompt as string } : {}),
    ...(item.question !== undefined ? { question: item.question as string } : {}),
    where: `job ${jobId}`,
  };
  return { item: parsed, defaults: defaults as ItemDefaults, generation: generation as PayloadGeneration };
}

/** A job's return value, checked: the line to write for `itemId`, or why it is not one. */
export function parseJobResult(value: unknown, itemId: string): { line: ResultLine | ErrorLine } | { problem: string } {
  if (!isObject(value)) return { problem: `the worker returned ${value === null ? 'null' : typeof value}, not a result line` };
  if (value.id !== itemId) return { problem: `the worker's line is for id ${JSON.stringify(value.id)}` };
  if (typeof value.text !== 'string' && typeof value.error !== 'string') return { problem: 'the worker\'s line has neither "text" nor "error"' };
  return { line: value as unknown as ResultLine | ErrorLine };
}
