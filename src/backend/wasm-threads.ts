// Lets @tensorflow/tfjs-backend-wasm run its threaded SIMD build under Node. tfjs turns threads off
// in Node (WASM_HAS_MULTITHREAD_SUPPORT is false there) and Emscripten's pthread pool starts its
// workers with `new Worker(<blob: URL>)`, which worker_threads refuses. While the backend starts,
// the global `Worker` is PoolWorker below, which runs wasm-pthread-worker.cjs in a worker_threads
// Worker with the Blob tfjs built; the global is removed again once the backend is up.
//
// The glue always preallocates 8 pool workers, but XNNPACK runs `threads - 1` pthreads on them
// (the calling thread is the other one), taken from the end of the pool. Only those start a real
// thread while the backend loads; the others answer "loaded" and start one only if a pthread is
// ever run on them. That saves one V8 isolate and one wasm instance per unused slot.
import { EventEmitter } from 'node:events';
import { Worker as NodeWorker, type Transferable } from 'node:worker_threads';
import { resolveObjectURL, type Blob } from 'node:buffer';
import { fileURLToPath } from 'node:url';

const WORKER_ENTRY = fileURLToPath(new URL('./wasm-pthread-worker.cjs', import.meta.url));

/** The pool of one threaded start, and whether that start was given up. */
interface Start {
  pool: PoolWorker[];
  /** Pool workers that get a thread while the backend loads (XNNPACK's `threads - 1`). */
  eager: number;
  abandoned: boolean;
  reportError(e: Error): void;
}

interface EmscriptenMessage {
  cmd?: string;
}

let current: Start | undefined;

/** The subset of a Web Worker that Emscripten's pthread glue (Node flavour) uses. */
class PoolWorker extends EventEmitter {
  private readonly start: Start;
  private readonly script: Blob;
  private thread: NodeWorker | undefined;
  private loadMessage: [EmscriptenMessage, readonly Transferable[] | undefined] | undefined;

  constructor(url: string | URL) {
    super();
    if (!current) throw new Error('pthread worker requested outside a threaded wasm start');
    const script = resolveObjectURL(String(url));
    if (!script) throw new Error(`pthread worker script ${String(url)} is not a Blob URL`);
    this.script = script;
    this.start = current;
    this.start.pool.push(this);
  }

  private spawn(): NodeWorker {
    // execArgv: [] keeps the parent's loaders (tsx) out of the workers.
    const thread = new NodeWorker(WORKER_ENTRY, { workerData: { script: this.script }, execArgv: [] });
    thread.on('message', (data) => this.emit('message', data));
    thread.on('error', (e) => this.emit('error', e));
    thread.on('exit', (code) => this.emit('exit', code));
    this.thread = thread;
    return thread;
  }

  postMessage(msg: EmscriptenMessage, transfer?: readonly Transferable[]): void {
    if (this.start.abandoned) return;
    if (this.thread) {
      this.thread.postMessage(msg, transfer);
      return;
    }
    const index = this.start.pool.indexOf(this);
    if (msg.cmd === 'load' && index < this.start.pool.length - this.start.eager) {
      this.loadMessage = [msg, transfer];
      setImmediate(() => this.emit('message', { cmd: 'loaded' }));
      return;
    }
    const thread = this.spawn();
    if (this.loadMessage) {
      // A pthread runs on a slot that answered "loaded" without a thread: start it now. It runs
      // for good, so it must not keep Node alive (see ref()).
      thread.postMessage(...this.loadMessage);
      this.loadMessage = undefined;
      thread.unref();
    }
    thread.postMessage(msg, transfer);
  }

  // Emscripten refs a worker while it runs a pthread; XNNPACK's pool threads never return, so a
  // ref'd worker would keep Node alive forever. Emscripten unrefs each worker once it has loaded.
  ref(): void {}

  unref(): void {
    this.thread?.unref();
  }

  async terminate(): Promise<number> {
    return this.thread ? this.thread.terminate() : 0;
  }

  hasThread(): boolean {
    return this.thread !== undefined;
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    // A given-up start must never finish (its pthreadpool would wait on terminated workers).
    if (this.start.abandoned) return false;
    // Until the backend is up, an error goes to the fallback instead of Emscripten's handler,
    // which rethrows it on the main thread.
    if (event === 'error' && current === this.start) {
      this.start.reportError(args[0] as Error);
      return true;
    }
    return super.emit(event, ...args);
  }
}

export interface ThreadedStart {
  /** Rejects with the first error a pool worker raises during startup. */
  failed: Promise<never>;
  /** Gives the start up: its threads are terminated and their messages dropped. */
  abandon(): Promise<void>;
  /** Removes the `Worker` global; call once the start has succeeded or been abandoned. */
  finish(): void;
  /** Pool workers that run a thread. */
  threadCount(): number;
}

/**
 * Installs the `Worker` global the threaded build's glue uses (see the file comment), for a
 * start that will run `threads` threads.
 */
export function prepareThreadedStart(threads: number): ThreadedStart {
  const previous = Object.getOwnPropertyDescriptor(globalThis, 'Worker');
  // The glue assigns worker_threads.Worker to the global first; that write is ignored.
  Object.defineProperty(globalThis, 'Worker', {
    configurable: true,
    get: () => PoolWorker,
    set: () => {},
  });
  let reject!: (e: Error) => void;
  const failed = new Promise<never>((_, r) => (reject = r));
  failed.catch(() => {});
  const start: Start = { pool: [], eager: threads - 1, abandoned: false, reportError: (e) => reject(e) };
  current = start;
  return {
    failed,
    async abandon() {
      const running = start.pool.filter((w) => w.hasThread());
      start.abandoned = true;
      await Promise.all(running.map((w) => w.terminate()));
    },
    finish() {
      if (current === start) current = undefined;
      if (previous) Object.defineProperty(globalThis, 'Worker', previous);
      else delete (globalThis as { Worker?: unknown }).Worker;
    },
    threadCount: () => start.pool.filter((w) => w.hasThread()).length,
  };
}
