// The batch loop: items from a stream go through a generator (a VlmBatcher, whose sequences decode
// together) with a bounded number in flight — enough to keep every batch row busy while the next
// items' images load — and each finished item's line is written at once, in completion order.
import { setMaxListeners } from 'node:events';
import type { GenerateCallOptions } from '../engine.ts';
import type { BatchItem } from './input.ts';
import { isErrorLine, runItem, type ErrorLine, type ItemDefaults, type ItemGenerator, type ResultLine } from './item.ts';

export interface RunBatchOptions extends ItemDefaults {
  /** Generation options for every item (its signal is the run's). */
  generation?: Omit<GenerateCallOptions, 'signal' | 'onProgress'>;
  /** Items loading or generating at once (default 10: a batch of 8 and the next 2 being prepared). */
  maxInFlight?: number;
  /** Stops the run: no new item starts, the ones in flight end without a line (they are redone next time). */
  signal?: AbortSignal;
  /** After each line is written. */
  onLine?: (line: ResultLine | ErrorLine, item: BatchItem) => void;
}

export interface BatchSummary {
  /** Lines written: results and errors. */
  written: number;
  failed: number;
  /** The signal stopped the run before every item had its line. */
  aborted: boolean;
}

/**
 * Runs every item of `items` through `generator` and hands each line to `write` (which must put it
 * in the output whole before returning) as the item finishes. Only `items` and the lines of the items
 * in flight are in memory. A failed item is an error line and the run goes on; a failing `write` (or
 * `onLine`) stops the run (the items in flight are aborted) and is thrown.
 */
export async function runBatch(
  generator: ItemGenerator,
  items: AsyncIterable<BatchItem>,
  write: (line: ResultLine | ErrorLine) => void,
  options: RunBatchOptions = {},
): Promise<BatchSummary> {
  const maxInFlight = options.maxInFlight ?? 10;
  if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1) throw new RangeError(`runBatch: maxInFlight must be a whole number ≥ 1, got ${maxInFlight}`);
  const stop = new AbortController();
  // Every item in flight listens to this one signal (its request, its sequence): not a leak.
  setMaxListeners(Math.max(10, 4 * maxInFlight), stop.signal);
  const onAbort = () => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) stop.abort();
  const generation: GenerateCallOptions = { ...options.generation, signal: stop.signal };
  const defaults: ItemDefaults = { prompt: options.prompt, question: options.question };
  const summary: BatchSummary = { written: 0, failed: 0, aborted: false };
  const inFlight = new Set<Promise<void>>();
  let writeError: { error: unknown } | undefined;
  let unfinished = false;

  const start = (item: BatchItem) => {
    const p = runItem(generator, item, defaults, generation).then((line) => {
      if (line === undefined || writeError) {
        unfinished = true;
        return;
      }
      try {
        write(line);
        summary.written++;
        if (isErrorLine(line)) summary.failed++;
        options.onLine?.(line, item);
      } catch (error) {
        writeError = { error };
        stop.abort();
      }
    }).finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  try {
    for await (const item of items) {
      while (inFlight.size >= maxInFlight && !stop.signal.aborted) await Promise.race(inFlight);
      if (stop.signal.aborted) {
        unfinished = true;
        break;
      }
      start(item);
    }
  } finally {
    // A stop ends the items in flight; an input failing mid-stream lets them finish and be written.
    await Promise.all(inFlight);
    options.signal?.removeEventListener('abort', onAbort);
  }
  if (writeError) throw writeError.error;
  summary.aborted = unfinished;
  return summary;
}
