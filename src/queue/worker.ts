// A BullMQ worker over a loaded model: it takes up to `concurrency` jobs at once and runs them through
// one VlmBatcher of that many rows (their sequences decode together), returning for each job the line
// `tfvlm batch` writes for its item. While a job runs, BullMQ renews its lock every lockDuration / 2;
// a worker that dies stops renewing, and any other worker's stalled check (every stalledInterval)
// puts the job back in the wait list for someone else. stop() closes cleanly: no new jobs, the ones
// in flight finish within a grace period, and those still running then go back to the wait list at
// once (no lock to wait out).
import os from 'node:os';
import type { Job, Worker } from 'bullmq';
import type { Vlm } from '../engine.ts';
import { VlmBatcher } from '../vlm-batcher.ts';
import { runItem, type ErrorLine, type ResultLine } from '../batch/item.ts';
import { parsePayload, PayloadError, type JobPayload } from './payload.ts';
import { connectionOptions, type RedisTarget } from './redis-url.ts';
import { QUEUE_DEFAULTS } from './defaults.ts';

export interface QueueWorkerOptions {
  target: RedisTarget;
  /** Default QUEUE_DEFAULTS.queueName. */
  queueName?: string;
  /** Jobs in flight, and the batcher's max batch (default 4). */
  concurrency?: number;
  /** How long a job's lock lasts without renewal (ms): a dead worker's job waits at most this (+ stalledIntervalMs) before another takes it. */
  lockDurationMs?: number;
  /** How often this worker looks for jobs whose lock expired (ms). */
  stalledIntervalMs?: number;
  /** Times a job may be recovered from a dead worker before it fails ("job stalled more than allowable limit"). */
  maxStalledCount?: number;
  /** Stored on each job it takes (job.processedBy); default `host:pid`. */
  name?: string;
  /** Events worth a line: stalls, failures, returned jobs, Redis errors, a summary now and then. */
  log?: (line: string) => void;
  /** Summary line at most this often while jobs finish (default 30 s). */
  summaryEveryMs?: number;
}

export interface QueueWorkerStats {
  /** Jobs returned as result lines. */
  done: number;
  /** Of which error lines (the item failed: missing image, …). */
  errors: number;
  /** Jobs failed in BullMQ (bad payload). */
  failed: number;
  /** Jobs given back to the queue by stop(). */
  returned: number;
}

export interface QueueWorker {
  readonly name: string;
  readonly stats: QueueWorkerStats;
  /** Resolves when the worker is closed (stop() finished). */
  readonly closed: Promise<void>;
  /**
   * Takes no more jobs; lets the ones in flight finish for up to `graceMs`, then gives the rest back to
   * the wait list; closes the Redis connections and the batcher (the model stays loaded: its owner
   * disposes it). Calling it again with a smaller grace shortens the wait.
   */
  stop(graceMs?: number): Promise<void>;
}

/** After the grace period, how long handing back and closing may take before the connections are cut. */
const DISCONNECT_AFTER_MS = 5000;

/** Starts taking jobs from the queue once Redis answers. */
export async function startQueueWorker(vlm: Vlm, options: QueueWorkerOptions): Promise<QueueWorker> {
  const { Worker, UnrecoverableError, WaitingError } = await import('bullmq');
  const concurrency = options.concurrency ?? QUEUE_DEFAULTS.concurrency;
  const name = options.name ?? `${os.hostname()}:${process.pid}`;
  const log = options.log ?? (() => {});
  const batcher = new VlmBatcher(vlm, { maxBatch: concurrency, maxQueue: concurrency });
  const giveBack = new AbortController();
  const stats: QueueWorkerStats = { done: 0, errors: 0, failed: 0, returned: 0 };

  const processor = async (job: Job<JobPayload, ResultLine | ErrorLine>, token?: string, cancel?: AbortSignal): Promise<ResultLine | ErrorLine> => {
    const jobId = job.id ?? '?';
    let parsed;
    try {
      parsed = parsePayload(job.data, jobId);
    } catch (e) {
      if (e instanceof PayloadError) throw new UnrecoverableError(e.message);
      throw e;
    }
    // One signal per job (the request's listeners go with it), fired by stop() or BullMQ's cancelJob.
    const signal = AbortSignal.any(cancel ? [giveBack.signal, cancel] : [giveBack.signal]);
    const line = await runItem(batcher, parsed.item, parsed.defaults, { ...parsed.generation, signal });
    if (line !== undefined) return line;
    if (giveBack.signal.aborted && token !== undefined) {
      await job.moveToWait(token);
      stats.returned++;
      log(`job ${jobId}: given back to the queue (stopping)`);
      throw new WaitingError();
    }
    throw new Error('cancelled');
  };

  const worker: Worker<JobPayload, ResultLine | ErrorLine> = new Worker(options.queueName ?? QUEUE_DEFAULTS.queueName, processor, {
    connection: connectionOptions(options.target),
    name,
    concurrency,
    lockDuration: options.lockDurationMs ?? QUEUE_DEFAULTS.lockDurationMs,
    stalledInterval: options.stalledIntervalMs ?? QUEUE_DEFAULTS.stalledIntervalMs,
    maxStalledCount: options.maxStalledCount ?? QUEUE_DEFAULTS.maxStalledCount,
    // No removeOnComplete / removeOnFail: finished jobs stay in Redis until the collector has their
    // line on disk, and then it removes them.
    autorun: false,
  });

  const summaryEveryMs = options.summaryEveryMs ?? 30_000;
  const started = performance.now();
  let lastSummary = started;
  const summary = () => {
    const minutes = (performance.now() - started) / 60_000;
    return `${stats.done} jobs done${stats.errors ? ` (${stats.errors} error lines)` : ''}${stats.failed ? `, ${stats.failed} failed` : ''}, ` +
      `${(stats.done / Math.max(minutes, 1e-9)).toFixed(1)}/min`;
  };
  worker.on('completed', (_job, line) => {
    stats.done++;
    if ('error' in line) stats.errors++;
    const now = performance.now();
    if (now - lastSummary >= summaryEveryMs) {
      lastSummary = now;
      log(summary());
    }
  });
  worker.on('failed', (job, error) => {
    stats.failed++;
    log(`job ${job?.id ?? '?'} failed: ${error.message}`);
  });
  worker.on('stalled', (jobId) => log(`job ${jobId} had stalled (its worker stopped renewing the lock): back in the queue for another worker`));
  worker.on('lockRenewalFailed', (jobIds) => log(`could not renew the lock of ${jobIds.join(', ')}: another worker may take them over`));
  let lastError = '';
  worker.on('error', (error) => {
    if (error.message === lastError) return; // a Redis outage repeats the same error at every retry
    lastError = error.message;
    log(`Redis: ${error.message}`);
  });

  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => { resolveClosed = resolve; });
  let closing: Promise<void> | undefined;
  let graceTimer: NodeJS.Timeout | undefined;
  let graceEnds = Infinity;

  const running = worker.run();
  running.catch((e: unknown) => log(`worker stopped: ${e instanceof Error ? e.message : String(e)}`));
  await worker.waitUntilReady();

  return {
    name,
    stats,
    closed,
    stop(graceMs = QUEUE_DEFAULTS.graceMs) {
      const ends = performance.now() + Math.max(0, graceMs);
      if (ends < graceEnds) {
        graceEnds = ends;
        clearTimeout(graceTimer);
        graceTimer = setTimeout(() => {
          giveBack.abort();
          // Handing jobs back and closing need Redis; if it is gone, cut the connections so close()
          // ends (those jobs' locks expire and other workers take them over).
          graceTimer = setTimeout(() => void worker.disconnect().catch(() => {}), DISCONNECT_AFTER_MS);
        }, Math.max(0, graceMs));
      }
      closing ??= (async () => {
        try {
          await worker.close();
          await running.catch(() => {});
        } finally {
          clearTimeout(graceTimer);
          await batcher.close();
          if (stats.done > 0) log(summary());
          resolveClosed();
        }
      })();
      return closing;
    },
  };
}
