// `tfvlm batch --queue redis://…`: the collector. The same input, output, resume and shard semantics as
// the local batch (planBatch: the output read and repaired, the input checked, the ids already done
// skipped), but no model: every item still to do becomes a BullMQ job (enqueue.ts) that `tfvlm worker`
// processes on any machine, and the finished jobs' lines are written to the output as they come
// (collect.ts). Killed at any point, the same command resumes: done ids are skipped, jobs still in
// Redis (queued, running or finished while no collector ran) are collected, none is added twice.
import { TfvlmError } from '../errors.ts';
import { fsyncPath } from '../io/atomic-write.ts';
import type { GenerateCallOptions } from '../engine.ts';
import type { BatchItem } from '../batch/input.ts';
import { openInput } from '../batch/input.ts';
import type { ItemDefaults } from '../batch/item.ts';
import { planBatch, planReport, plural } from '../batch/plan.ts';
import { batchProgress, formatDuration } from '../batch/progress.ts';
import { readResults, ResultsWriter } from '../batch/results-file.ts';
import type { Shard } from '../batch/shard.ts';
import { collectResults, type Line } from './collect.ts';
import { QUEUE_DEFAULTS, WORKER_FLAGS } from './defaults.ts';
import { enqueueItems } from './enqueue.ts';
import { jobIdOf, makePayload, payloadDigest, payloadGeneration, type JobPayload } from './payload.ts';
import { checkRedis } from './reach.ts';
import { connectionOptions, parseRedisUrl } from './redis-url.ts';

export interface QueueBatchOptions extends ItemDefaults {
  /** The --queue URL. */
  url: string;
  queueName?: string;
  input: string;
  output: string;
  shard?: Shard;
  retryErrors?: boolean;
  /** Generation options sent with every job (the JSON-safe ones; see payload.ts). */
  generation?: GenerateCallOptions;
  /** The flags given on the command line: the workers' own (--model, …) are refused here by name. */
  flagsGiven?: string[];
  quiet?: boolean;
  /** Status lines (stderr). */
  say?: (line: string) => void;
  /** Stops collecting (in addition to SIGINT / SIGTERM). */
  signal?: AbortSignal;
  pollMs?: number;
}

/** Exit status of a collection stopped by a signal (128 + SIGINT), as the local batch. */
const EXIT_INTERRUPTED = 130;

/** Runs the collector; returns the exit status. */
export async function runQueueBatch(o: QueueBatchOptions): Promise<number> {
  const say = o.say ?? ((line: string) => process.stderr.write(`tfvlm batch: ${line}\n`));
  const workerFlag = (o.flagsGiven ?? []).find((f) => (WORKER_FLAGS as readonly string[]).includes(f));
  if (workerFlag) {
    throw new TfvlmError(`tfvlm batch: --${workerFlag} is for the workers with --queue (the collector loads no model): give it to each \`tfvlm worker\``);
  }
  const target = parseRedisUrl(o.url);
  const queueName = o.queueName ?? QUEUE_DEFAULTS.queueName;
  const generation = payloadGeneration(o.generation ?? {});
  const defaults: ItemDefaults = { prompt: o.prompt, question: o.question };
  const payloadOf = (item: BatchItem): JobPayload => makePayload(item, defaults, generation);

  const version = await checkRedis(target);
  const plan = await planBatch({ input: openInput(o.input), output: o.output, shard: o.shard, retryErrors: o.retryErrors });
  const report = planReport(plan, o);
  if (report.repaired) say(report.repaired);
  if (!o.quiet) for (const line of report.lines) say(line);
  if (report.nothingToDo) {
    if (!o.quiet) say(report.nothingToDo);
    return 0;
  }

  const done = (await readResults(o.output)).done;
  /** Job id → digest of its payload: what this run waits for (about 100 bytes an item). */
  const pending = new Map<string, string>();
  for await (const item of plan.items()) pending.set(jobIdOf(item.id), payloadDigest(payloadOf(item)));

  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(EXIT_INTERRUPTED);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onAbort = () => stop.abort();
  o.signal?.addEventListener('abort', onAbort, { once: true });

  const { Queue } = await import('bullmq');
  const queue = new Queue<JobPayload, Line>(queueName, { connection: connectionOptions(target) });
  let lastError = '';
  queue.on('error', (e) => {
    if (e.message === lastError) return;
    lastError = e.message;
    say(`Redis: ${e.message}`);
  });
  const writer = ResultsWriter.open(o.output);
  const progress = o.quiet ? undefined : batchProgress(plan.todo);
  const started = performance.now();
  const where = `${target.display} queue "${queueName}"`;
  let lastWorkerHint = -Infinity;
  const hintIfNoWorker = async () => {
    if (performance.now() - lastWorkerHint < 300_000) return;
    // CLIENT LIST, which some hosted Redis services refuse: then no hint.
    if (await queue.getWorkersCount().catch(() => 1) > 0) return;
    lastWorkerHint = performance.now();
    say(`no worker is connected to ${where}: start \`tfvlm worker --queue ${target.display}${queueName === QUEUE_DEFAULTS.queueName ? '' : ` --queue-name ${queueName}`} --model …\` on each machine`);
  };

  try {
    // All jobs first, then collection: a job collected (and removed) while its item was still being
    // enqueued would be added again.
    const n = await enqueueItems(queue, plan.items(), payloadOf, stop.signal);
    if (!o.quiet && !stop.signal.aborted) {
      say(`enqueued ${plural(n, 'job')} on ${where} (Redis ${version}; an item whose job is already there keeps it); collecting into ${o.output}`);
    }
    if (!stop.signal.aborted) await hintIfNoWorker();
    const requeue = async (jobIds: string[]) => {
      const wanted = new Set(jobIds);
      await enqueueItems(queue, filterItems(plan.items(), (item) => wanted.has(jobIdOf(item.id))), payloadOf, stop.signal);
    };
    const summary = await collectResults({
      queue, pending, hasLine: (id) => done.has(id), requeue, signal: stop.signal, pollMs: o.pollMs,
      write: (lines) => {
        for (const line of lines) writer.append(line);
        fsyncPath(o.output);
        for (const line of lines) done.set(line.id, 'error' in line ? 'error' : 'ok');
      },
      onLine: (line) => progress?.item('error' in line),
      onIdle: async (idleMs) => {
        if (idleMs >= 60_000) await hintIfNoWorker();
      },
      log: say,
    });
    progress?.finish(!summary.aborted);
    const ms = performance.now() - started;
    const failed = summary.failed > 0 ? `; ${summary.failed} failed (their lines hold the error; --retry-errors redoes them)` : '';
    if (summary.aborted) {
      say(`interrupted: ${summary.written} of ${plural(plan.todo)} written${failed}; the jobs stay in Redis (workers go on): rerun the same command to collect the rest`);
      return EXIT_INTERRUPTED;
    }
    if (!o.quiet || summary.failed > 0) {
      say(`${plural(summary.written)} written to ${o.output} in ${formatDuration(ms)} (${((summary.written * 60_000) / ms).toFixed(1)} items/min)${failed}`);
    }
    return 0;
  } finally {
    writer.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    o.signal?.removeEventListener('abort', onAbort);
    await queue.close();
  }
}


async function* filterItems(items: AsyncIterable<BatchItem>, keep: (item: BatchItem) => boolean): AsyncGenerator<BatchItem> {
  for await (const item of items) if (keep(item)) yield item;
}

