// Before any work: the results file read (its torn tail repaired), the whole input checked line by line
// (every bad line and duplicate id reported at once), and the items this run still has to do counted —
// those of its shard without a line in the results. The items themselves are streamed again by
// `todo()`, so only the ids are held in memory.
import path from 'node:path';
import { TfvlmError } from '../errors.ts';
import { BatchInputError, inputItems, inputLines, type BatchInput, type BatchItem } from './input.ts';
import { dropErrorLines, readResults, type LineStatus } from './results-file.ts';
import { inShard, type Shard } from './shard.ts';

export interface PlanOptions {
  input: BatchInput;
  output: string;
  shard?: Shard;
  /** Redo items whose line is an error (their error lines are dropped from the output first). */
  retryErrors?: boolean;
}

export interface BatchPlan {
  /** Items in the input. */
  total: number;
  /** Items in this run's shard (total without --shard). */
  inShard: number;
  /** Items of the shard that already have a line (done, or failed without --retry-errors). */
  skipped: number;
  /** Of those, error lines kept (an earlier failure; --retry-errors redoes them). */
  skippedErrors: number;
  /** Error lines dropped from the output for --retry-errors. */
  retried: number;
  /** Items this run does. */
  todo: number;
  /** The torn last line cut off the output, if there was one. */
  repaired?: { line: number; bytes: number };
  /** Lines in the output whose id is not in the input. */
  foreign: number;
  /** The items to do, streamed from the input again in input order. */
  items(): AsyncGenerator<BatchItem>;
}

/** Bad lines listed in one error, at most this many. */
const MAX_LISTED = 20;

/** Reads the output, checks the input and counts the work; throws a BatchInputError listing bad lines and duplicate ids. */
export async function planBatch(options: PlanOptions): Promise<BatchPlan> {
  const { input, output, shard, retryErrors = false } = options;
  if (input.kind === 'jsonl' && path.resolve(input.file) === path.resolve(output)) throw new TfvlmError('--input and --output are the same file');
  const results = await readResults(output);
  /** Each id's line (its position, for a folder): a number per id, so a million ids stay small. */
  const firstLine = new Map<string, number>();
  const problems: string[] = [];
  let problemCount = 0;
  const problem = (message: string) => {
    problemCount++;
    if (problems.length < MAX_LISTED) problems.push(message);
  };
  let total = 0;
  let mine = 0;
  let skipped = 0;
  let skippedErrors = 0;
  const retry: string[] = [];
  const scan = input.kind === 'jsonl' ? inputLines(input.file) : numbered(inputItems(input));
  for await (const entry of scan) {
    if ('error' in entry) {
      problem(entry.error.message);
      continue;
    }
    const { item, line } = entry;
    const first = firstLine.get(item.id);
    if (first !== undefined) {
      problem(`${item.where}: duplicate id "${item.id}" (first on line ${first})`);
      continue;
    }
    total++;
    firstLine.set(item.id, line);
    if (!inShard(item.id, shard)) continue;
    mine++;
    const status: LineStatus | undefined = results.done.get(item.id);
    if (status === 'ok' || (status === 'error' && !retryErrors)) {
      skipped++;
      if (status === 'error') skippedErrors++;
    } else if (status === 'error') {
      retry.push(item.id);
    }
  }
  if (problemCount > 0) {
    const more = problemCount > problems.length ? `\n… and ${problemCount - problems.length} more` : '';
    throw new BatchInputError(`${problemCount} bad input line${problemCount === 1 ? '' : 's'}, nothing done:\n${problems.join('\n')}${more}`);
  }
  let foreign = 0;
  for (const id of results.done.keys()) if (!firstLine.has(id)) foreign++;
  firstLine.clear();
  let retried = 0;
  if (retry.length > 0) {
    const ids = new Set(retry);
    retried = await dropErrorLines(output, (id) => ids.has(id));
    for (const id of ids) results.done.delete(id);
  }
  const done = results.done;
  return {
    total, inShard: mine, skipped, skippedErrors, retried, todo: mine - skipped, foreign,
    ...(results.repaired ? { repaired: results.repaired } : {}),
    async *items() {
      for await (const item of inputItems(input)) {
        if (!inShard(item.id, shard)) continue;
        const status = done.get(item.id);
        if (status === 'ok' || (status === 'error' && !retryErrors)) continue;
        yield item;
      }
    },
  };
}

async function* numbered(items: AsyncIterable<BatchItem>): AsyncGenerator<{ item: BatchItem; line: number } | { error: BatchInputError }> {
  let line = 0;
  for await (const item of items) yield { item, line: ++line };
}

/** `1 item`, `3 items`. */
export const plural = (n: number, what = 'item') => `${n} ${what}${n === 1 ? '' : 's'}`;

/**
 * What a run says of its plan before it starts (the local batch and the queue's collector alike):
 * a torn last line that was cut off (said even when quiet), the summary lines, and, when every item
 * already has a line, that there is nothing to do.
 */
export function planReport(plan: BatchPlan, o: { input: string; output: string; shard?: Shard }): { repaired?: string; lines: string[]; nothingToDo?: string } {
  const { input, output, shard } = o;
  const lines: string[] = [];
  const what = shard ? `${plural(plan.total)} in ${input}, ${plan.inShard} in shard ${shard.index}/${shard.count}` : `${plural(plan.total)} in ${input}`;
  lines.push(`${what}; ${plan.todo} to do`);
  if (plan.skipped > 0) {
    const errors = plan.skippedErrors > 0 ? ` (${plan.skippedErrors} of them error lines; --retry-errors redoes those)` : '';
    lines.push(`skipped ${plan.skipped} already in ${output}${errors}`);
  }
  if (plan.retried > 0) lines.push(`retrying ${plural(plan.retried, 'failed item')} (their error lines dropped from ${output})`);
  if (plan.foreign > 0) lines.push(`${plural(plan.foreign, 'line')} of ${output} are for ids not in ${path.basename(input)} (kept)`);
  return {
    ...(plan.repaired ? { repaired: `${output}:${plan.repaired.line} was torn (${plan.repaired.bytes} bytes, no newline or not JSON: a crash mid-write): cut off; its item is redone` } : {}),
    lines,
    ...(plan.todo === 0 ? { nothingToDo: `nothing to do: every item${shard ? ' of the shard' : ''} has a line in ${output}` } : {}),
  };
}
