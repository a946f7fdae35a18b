// The browser bundle's kernel-pool host (scripts/build-web.mjs swaps pool-threads.ts for this file):
// the pool runs on the calling thread alone (threads = 1). Its workers are worker_threads workers
// that block in Atomics.wait, which a page's main thread may not do; Web Workers are left for later.
import type { MessagePort as NodeMessagePort } from 'node:worker_threads';

export type MessagePort = NodeMessagePort;

function unavailable(): never {
  throw new Error('kernel worker threads are not available in the browser build (the pool runs on one thread)');
}

export class Worker {
  constructor() {
    unavailable();
  }
}

export class MessageChannel {
  constructor() {
    unavailable();
  }
}

export function receiveMessageOnPort(_port: MessagePort): undefined {
  return undefined;
}

export function defaultThreads(): number {
  return 1;
}

export function onExit(_fn: () => void): void {}
