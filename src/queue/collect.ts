// Finished jobs → result lines, exactly once. The collector walks the queue's completed and failed sets
// (oldest first, a page at a time); for each job of an item it is waiting for, it writes the line and
// makes it durable (fsync) before it removes the job, so a collector killed at any point either finds
// the line in the output next time (and then only removes the leftover job) or finds the job still in
// Redis (and writes it then). Jobs keep their results in Redis for as long as no collector takes them.
//
// Self-repair, both through idempotent enqueueing: a finished job whose data differs from what this
// run would send (left by an earlier run with other options) is removed and added again, and when the
// queue holds fewer jobs than the run waits for (a flushed database, a removed job), the run's pending
// items are enqueued again.
import type { Job, Queue } from 'bullmq';
import type { BatchItem } from '../batch/input.ts';
import { errorLine, type ErrorLine, type ResultLine } from '../batch/item.ts';
import { jobIdOf, parseJobResult, payloadDigest, type JobPayload } from './payload.ts';

export type Line = ResultLine | ErrorLine;

export interface CollectOptions {
  queue: Queue<JobPayload, Line>;
  /** The jobs this run waits for: job id → payloadDigest of the payload this run sends; entries go as their lines are written. */
  pending: Map<string, string>;
  /** Whether an item already has a line in the output (its job, if still in Redis, is only removed). */
  hasLine(itemId: string): boolean;
  /** Puts lines in the output durably: when it returns they survive a crash. */
  write(lines: Line[]): void;
  /** Adds the jobs of these pending job ids again (ids BullMQ already holds are skipped by BullMQ). */
  requeue(jobIds: string[]): Promise<void>;
  signal?: AbortSignal;
  /** Wait between sweeps that found nothing (default 500 ms). */
  pollMs?: number;
  /** When sweeps find nothing, check this often that no pending job went missing (default 10 s). */
  checkMs?: number;
  onLine?: (line: Line) => void;
  /** Called at each missing-jobs check with the time since the last line, and the queue's counts. */
  onIdle?: (idleMs: number, counts: Record<string, number>) => void | Promise<void>;
  log?: (line: string) => void;
}

export interface CollectSummary {
  written: number;
  failed: number;
  /** The signal stopped it with items still pending. */
  aborted: boolean;
}

/** Jobs read per call. */
const PAGE = 200;

const ALL_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'] as const;

/** Collects until every pending job has its line (or the signal fires). */
export async function collectResults(o: CollectOptions): Promise<CollectSummary> {
  const pollMs = o.pollMs ?? 500;
  const checkMs = o.checkMs ?? 10_000;
  const log = o.log ?? (() => {});
  const summary: CollectSummary = { written: 0, failed: 0, aborted: false };
  let lastLineAt = performance.now();
  let lastCheckAt = performance.now();

  /** The line a finished job of this run gives: its result, or an error line for a failed job or a bad result. */
  const lineOf = (job: Job<JobPayload, Line>, state: 'completed' | 'failed'): Line => {
    const item = job.data.item;
    const batchItem: BatchItem = { id: item.id, images: item.images, single: item.single, sources: item.sources, where: `job ${job.id}` };
    if (state === 'failed') return errorLine(batchItem, new Error(`worker: ${job.failedReason || 'failed without a reason'}`));
    const parsed = parseJobResult(job.returnvalue, item.id);
    return 'line' in parsed ? parsed.line : errorLine(batchItem, new Error(`worker: ${parsed.problem}`));
  };

  /** One pass over the finished jobs; returns the lines written. */
  const sweep = async (): Promise<number> => {
    let written = 0;
    for (const state of ['completed', 'failed'] as const) {
      let start = 0;
      for (;;) {
        const jobs = await o.queue.getJobs([state], start, start + PAGE - 1, true);
        const lines: Line[] = [];
        /** The jobs of `lines`, in the same order. */
        const collected: string[] = [];
        const remove: string[] = [];
        const redo: string[] = [];
        let kept = 0;
        for (const job of jobs) {
          const jobId = job.id ?? '';
          const digest = o.pending.get(jobId);
          if (digest === undefined) {
            const itemId = (job.data as Partial<JobPayload> | undefined)?.item?.id;
            if (typeof itemId === 'string' && jobIdOf(itemId) === jobId && o.hasLine(itemId)) remove.push(jobId); // written before a crash
            else kept++; // not this run's: another batch's job, left alone
            continue;
          }
          // Same digest: the data is this run's payload for the item, so it can be trusted as such.
          if (payloadDigest(job.data) !== digest) {
            redo.push(jobId);
            continue;
          }
          lines.push(lineOf(job, state));
          collected.push(jobId);
        }
        if (lines.length > 0) {
          o.write(lines);
          for (const id of collected) o.pending.delete(id);
          for (const line of lines) {
            summary.written++;
            if ('error' in line) summary.failed++;
            o.onLine?.(line);
          }
          written += lines.length;
          lastLineAt = performance.now();
        }
        // Only now, with the lines on disk, do the jobs go.
        await Promise.all([...collected, ...remove, ...redo].map((id) => o.queue.remove(id)));
        if (redo.length > 0) {
          log(`${redo.length} finished job${redo.length === 1 ? ' was' : 's were'} left by a run with other options or inputs: enqueued again`);
          await o.requeue(redo);
        }
        if (jobs.length < PAGE) break;
        start += kept;
      }
    }
    return written;
  };

  for (;;) {
    const written = await sweep();
    if (o.pending.size === 0) break;
    if (o.signal?.aborted) {
      summary.aborted = true;
      break;
    }
    if (written > 0) continue;
    const now = performance.now();
    if (now - lastCheckAt >= checkMs) {
      lastCheckAt = now;
      const counts = await o.queue.getJobCounts(...ALL_STATES);
      const held = ALL_STATES.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
      if (held < o.pending.size) {
        log(`the queue holds ${held} jobs but ${o.pending.size} items are still to come: enqueueing the missing ones again`);
        await o.requeue([...o.pending.keys()]);
      }
      await o.onIdle?.(now - lastLineAt, counts);
    }
    await sleep(pollMs, o.signal);
  }
  return summary;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
