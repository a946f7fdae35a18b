// One item → one result line: the request an item makes (its images and its instruction), run through
// anything that generates (a Vlm, a VlmBatcher), and the line that records the answer or the failure.
// The batch loop and a queue worker both write exactly these lines.
import type { GenerateCallOptions, GenerationOutput, VlmRequest } from '../engine.ts';
import { captionRequest } from '../tasks/prompts.ts';
import type { BatchItem } from './input.ts';

/** What answers a request: Vlm and VlmBatcher both do. */
export interface ItemGenerator {
  generate(request: VlmRequest, options?: GenerateCallOptions): Promise<GenerationOutput>;
}

/** The instruction for items without their own: --prompt, or --question (at most one of them). */
export interface ItemDefaults {
  prompt?: string;
  question?: string;
}

type ImageKeys = { image: string } | { images: string[] };

/** A finished item, keys in snake_case as the CLI's --json output. */
export type ResultLine = { id: string } & ImageKeys & {
  text: string;
  generated_tokens: number;
  stop_reason: GenerationOutput['stopReason'];
  timings: { embed_ms: number; prefill_ms: number; prefill_tokens: number; decode_ms: number; decode_tokens: number };
};

/** A failed item (missing or corrupt image, image over the pixel budget, …). */
export type ErrorLine = { id: string } & ImageKeys & { error: string };

/**
 * The item's request: one user turn with its images and its instruction (its own prompt or question,
 * else the defaults', else describe's default caption prompt), as `tfvlm describe` / `tfvlm ask` make it.
 */
export function itemRequest(item: BatchItem, defaults: ItemDefaults = {}): VlmRequest {
  return captionRequest(item.sources, item.prompt ?? item.question ?? defaults.prompt ?? defaults.question);
}

const imageKeys = (item: BatchItem): ImageKeys => (item.single ? { image: item.images[0]! } : { images: item.images });
const ms = (x: number) => Math.round(x * 100) / 100;

export function resultLine(item: BatchItem, out: GenerationOutput): ResultLine {
  const t = out.timings;
  return {
    id: item.id, ...imageKeys(item), text: out.text, generated_tokens: out.generatedIds.length, stop_reason: out.stopReason,
    timings: { embed_ms: ms(t.embedMs), prefill_ms: ms(t.prefillMs), prefill_tokens: t.prefillTokens, decode_ms: ms(t.decodeMs), decode_tokens: t.decodeTokens },
  };
}

export function errorLine(item: BatchItem, error: unknown): ErrorLine {
  return { id: item.id, ...imageKeys(item), error: error instanceof Error ? error.message : String(error) };
}

export function isErrorLine(line: ResultLine | ErrorLine): line is ErrorLine {
  return 'error' in line;
}

/**
 * Runs one item: its result line, or its error line when it fails (the failure is the item's, the
 * run goes on). Undefined when `options.signal` aborted it: it has no line and is redone next time.
 */
export async function runItem(
  generator: ItemGenerator, item: BatchItem, defaults: ItemDefaults = {}, options: GenerateCallOptions = {},
): Promise<ResultLine | ErrorLine | undefined> {
  let out: GenerationOutput;
  try {
    out = await generator.generate(itemRequest(item, defaults), options);
  } catch (e) {
    if (options.signal?.aborted) return undefined;
    return errorLine(item, e);
  }
  if (out.stopReason === 'aborted') return undefined;
  return resultLine(item, out);
}
