// Items → BullMQ jobs, a chunk at a time. The job id is the item's (jobIdOf), and BullMQ does not add a
// job whose id it already holds, in any state: enqueueing again — a restarted collector, a retry of a
// missing job — never makes a second job for an item, and a job that finished while no collector ran
// keeps its result for the next one.
import type { Queue } from 'bullmq';
import type { BatchItem } from '../batch/input.ts';
import { jobIdOf, type JobPayload } from './payload.ts';

/** Jobs per addBulk call (one round trip each). */
const CHUNK = 500;

/** Adds a job for each item (none for an id already in the queue); returns how many were submitted. */
export async function enqueueItems(
  queue: Queue<JobPayload>, items: AsyncIterable<BatchItem> | Iterable<BatchItem>, payloadOf: (item: BatchItem) => JobPayload, signal?: AbortSignal,
): Promise<number> {
  let submitted = 0;
  let chunk: BatchItem[] = [];
  const flush = async () => {
    if (chunk.length === 0) return;
    await queue.addBulk(chunk.map((item) => ({
      name: 'item',
      data: payloadOf(item),
      // Kept after they finish: the collector removes each one once its line is on disk.
      opts: { jobId: jobIdOf(item.id), removeOnComplete: false, removeOnFail: false, attempts: 1 },
    })));
    submitted += chunk.length;
    chunk = [];
  };
  for await (const item of items) {
    if (signal?.aborted) break;
    chunk.push(item);
    if (chunk.length >= CHUNK) await flush();
  }
  if (!signal?.aborted) await flush();
  return submitted;
}
