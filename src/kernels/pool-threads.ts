// What the kernel pool needs from its host to run workers: Node's worker_threads and core count.
// The browser bundle swaps this file for pool-threads.browser.ts (no workers: one thread).
import { availableParallelism } from 'node:os';

export { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';

/** Threads the pool starts when TFVLM_KERNEL_THREADS is not set: one per core. */
export function defaultThreads(): number {
  return availableParallelism();
}

/** Runs `fn` when the process exits. */
export function onExit(fn: () => void): void {
  process.once('exit', fn);
}
