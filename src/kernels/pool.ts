// The kernel thread pool: (cores − 1) worker_threads workers plus the calling thread. A call runs a
// kernel over a range of weight panels and returns when the whole range is done: synchronously,
// through Atomics on a SharedArrayBuffer control block. Threads split output columns, never the
// reduction, so results do not depend on the thread count or on who ran which panels.
//
// Splitting: the range is cut into contiguous chunks (CHUNKS_PER_THREAD per thread) that the
// caller's thread and the workers claim one at a time from a shared claim word. A worker that is
// late (woken from sleep: 150–350 µs on this kind of VM, or preempted by another process) then
// costs nothing: the threads that are running take its chunks.
//
// Each thread holds an instance of linear.wasm for every registered arena memory. Registering posts
// the shared WebAssembly.Memory to every worker over a MessagePort and has each worker take it with
// receiveMessageOnPort inside a control job, so registration is synchronous too.
//
// Waiting: after a call a worker spins on the job word for TFVLM_KERNEL_SPIN_US (default 200)
// microseconds, since a decode step issues ~200 calls back to back, then sleeps in Atomics.wait;
// the caller notifies only when a worker sleeps. The caller spins while claimed chunks finish,
// then waits too. Workers are unref'd (they never keep the process alive) and stop on close() or
// at exit.
import { defaultThreads, MessageChannel, onExit, receiveMessageOnPort, Worker, type MessagePort } from './pool-threads.ts';
import { instantiate, kernelModule, POOL_KERNELS, type KernelExports, type PoolKernel } from './module.ts';

/** Int32 indices into the control block. */
const L = {
  // The job word workers wait on: (sequence << 4) | kind, one store publishes a job.
  JOB: 0,
  // A call's arguments, written by the caller before it publishes the claim word.
  ARENA: 1, FN: 2, NARGS: 3, BEGIN_ARG: 4, END_ARG: 5, RANGE_BEGIN: 6, RANGE_END: 7,
  SCRATCH_ARG: 8, SCRATCH_BASE: 9, SCRATCH_STRIDE: 10, ARGS: 16, MAX_ARGS: 12,
  // The claim word (see CLAIM), on a cache line of its own (64 bytes = 16 int32).
  CLAIM: 32,
  // Written by workers, another line.
  COMPLETED: 48, ACKS: 49, MAIN_SLEEP: 50, ERROR: 51, READY: 52,
  // Worker i's sleep flag at SLEEP + LINE·(i − 1), each on its own line.
  SLEEP: 64, LINE: 16,
} as const;
/**
 * The claim word: tag (12 bits, the call's sequence number: no ABA) | chunk count (10) | next
 * chunk (10). A thread claims chunk `next` by compare-exchanging next + 1 into the word; the count
 * travels in the same word, so a claim never pairs one call's count with another's chunk.
 */
const CLAIM = { COUNT_SHIFT: 10, TAG_SHIFT: 20, MASK: 0x3ff } as const;
const KIND = { CALL: 1, REGISTER: 2, UNREGISTER: 3, PING: 4, QUIT: 5, MASK: 15 } as const;
/** Chunks per thread: enough that a late or preempted thread's share is small. */
const CHUNKS_PER_THREAD = 4;

type Kernel = (...args: number[]) => void;
/** The L.MAX_ARGS (12) argument slots of a kernel call. */
type ArgSlots = [number, number, number, number, number, number, number, number, number, number, number, number];

export interface PoolOptions {
  /** Threads, the caller's included (default TFVLM_KERNEL_THREADS, else one per core). 1 = no workers. */
  threads?: number;
  /** The worker script (tests pass a broken one to see the fallback). */
  workerUrl?: URL;
  /** How long to wait for the workers to start before falling back to one thread. */
  startTimeoutMs?: number;
  /** How long a worker spins after a call before it sleeps (default TFVLM_KERNEL_SPIN_US, else 200). */
  spinMicros?: number;
}

/** One call: kernel `fn` of arena `arena` over panels [begin, end) (see KernelPool.call). */
export interface PoolCall {
  arena: number;
  fn: PoolKernel;
  /** The kernel's arguments; args[beginArg] and args[endArg] are replaced by each thread's chunk. */
  args: readonly number[];
  beginArg: number;
  endArg: number;
  begin: number;
  end: number;
  /** Threads to use (≤ pool.threads; 1 runs on the caller's thread alone, without the workers). */
  threads: number;
  /** When ≥ 0: args[scratchArg] becomes scratchBase + thread · scratchStride on each thread. */
  scratchArg?: number;
  scratchBase?: number;
  scratchStride?: number;
}

const DEFAULT_SPIN_MICROS = 200;
const DEFAULT_START_TIMEOUT_MS = 10_000;
/** A call that takes longer than this is taken for a dead worker. */
const CALL_TIMEOUT_MS = 600_000;

function positiveIntEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${raw} is not a positive integer`);
  return n;
}

function nonNegativeIntEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${raw} is not a non-negative integer`);
  return n;
}

const livePools = new Set<KernelPool>();
let exitHookInstalled = false;

export class KernelPool {
  /** Threads a call can use, the caller's included. */
  threads: number;
  /** Why there are fewer threads than asked for, when there are. */
  reason?: string;
  /**
   * Times the caller's sleep ended by its timeout rather than by a worker's wake-up: each is a
   * lost wake-up that cost up to 100 ms (0 when the pool works as designed).
   */
  timedOutWaits = 0;
  private readonly module = kernelModule();
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private readonly ctl: Int32Array;
  /** Arena id → the caller thread's kernels (indexed like POOL_KERNELS); undefined once unregistered. */
  private readonly arenas: (Kernel[] | undefined)[] = [];
  /** Arena id → the caller thread's instance. */
  private readonly instances: (KernelExports | undefined)[] = [];
  private readonly mainArgs = new Array(L.MAX_ARGS).fill(0) as ArgSlots;
  private closed = false;

  constructor(options: PoolOptions = {}) {
    const requested = options.threads ?? positiveIntEnv('TFVLM_KERNEL_THREADS') ?? defaultThreads();
    const spinMicros = options.spinMicros ?? nonNegativeIntEnv('TFVLM_KERNEL_SPIN_US') ?? DEFAULT_SPIN_MICROS;
    const workers = Math.max(0, requested - 1);
    // A page that is not cross-origin isolated has no SharedArrayBuffer; one thread needs none.
    const Shared = typeof SharedArrayBuffer === 'function' ? SharedArrayBuffer : ArrayBuffer;
    this.ctl = new Int32Array(new Shared(4 * (L.SLEEP + L.LINE * Math.max(1, workers))));
    this.threads = 1;
    if (workers > 0) {
      const failure = this.start(workers, options.workerUrl ?? new URL('./pool-worker.mjs', import.meta.url),
        options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS, spinMicros);
      if (failure) {
        this.stopWorkers();
        this.reason = `kernel workers unavailable, running on the calling thread alone: ${failure}`;
      } else {
        this.threads = requested;
      }
    }
    livePools.add(this);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      onExit(() => {
        for (const pool of livePools) pool.close();
      });
    }
  }

  /** Starts the workers and waits until each has reported in; returns why not, on failure. */
  private start(count: number, url: URL, timeoutMs: number, spinMicros: number): string | undefined {
    const errors: string[] = [];
    try {
      for (let i = 1; i <= count; i++) {
        const { port1, port2 } = new MessageChannel();
        const worker = new Worker(url, {
          // No tsx or other loader: the worker is plain JS and starts faster without them.
          execArgv: [],
          workerData: {
            control: this.ctl.buffer, index: i, module: this.module, port: port2, layout: L, kinds: KIND,
            claim: CLAIM, kernels: POOL_KERNELS, spinMicros,
          },
          transferList: [port2],
        });
        worker.on('error', (e) => errors.push(e.message));
        worker.unref();
        port1.unref();
        this.workers.push(worker);
        this.ports.push(port1);
      }
    } catch (e) {
      return (e as Error).message;
    }
    const deadline = performance.now() + timeoutMs;
    for (let ready; (ready = Atomics.load(this.ctl, L.READY)) < count; ) {
      const left = deadline - performance.now();
      if (left <= 0) return `${count - ready} of ${count} workers did not start within ${timeoutMs} ms`;
      Atomics.wait(this.ctl, L.READY, ready, Math.min(left, 50));
      // A worker that failed to load reports through its 'error' event, which needs the event loop;
      // the timeout covers it.
    }
    return errors.length ? errors.join('; ') : undefined;
  }

  private stopWorkers(): void {
    this.publish(KIND.QUIT);
    for (const w of this.workers) void w.terminate();
    for (const p of this.ports) p.close();
    this.workers.length = 0;
    this.ports.length = 0;
  }

  /** Instantiates the kernels on `memory` on every thread; returns the arena id for call(). */
  register(memory: WebAssembly.Memory): number {
    if (this.closed) throw new Error('the kernel pool is closed');
    let id = this.arenas.indexOf(undefined);
    if (id < 0) id = this.arenas.length;
    const exports = instantiate(this.module, memory);
    this.instances[id] = exports;
    this.arenas[id] = POOL_KERNELS.map((name) => exports[name] as Kernel);
    if (this.workers.length) {
      for (const p of this.ports) p.postMessage({ id, memory });
      this.controlJob(KIND.REGISTER, id);
    }
    return id;
  }

  /** The calling thread's instance for arena `id` (for the single-thread kernels). */
  exports(id: number): KernelExports {
    const exports = this.instances[id];
    if (!exports) throw new Error(`arena ${id} is not registered with this kernel pool`);
    return exports;
  }

  /** How many arenas are registered (a disposed arena is not): what tests check for leaks. */
  get registeredArenas(): number {
    return this.arenas.filter((a) => a !== undefined).length;
  }

  /** Drops every thread's instance for arena `id` (the memory is freed once nothing else holds it). */
  unregister(id: number): void {
    if (!this.arenas[id]) return;
    this.arenas[id] = undefined;
    this.instances[id] = undefined;
    if (this.workers.length) this.controlJob(KIND.UNREGISTER, id);
  }

  /**
   * Runs `fn` over panels [begin, end), cut into contiguous chunks that this thread and the workers
   * claim; returns when all are done. A trap in any chunk is rethrown here once every claimed chunk
   * has finished.
   */
  call(c: PoolCall): void {
    const kernels = this.arenas[c.arena];
    if (!kernels) throw new Error(`arena ${c.arena} is not registered with this kernel pool`);
    const fnIndex = POOL_KERNELS.indexOf(c.fn);
    const fn = kernels[fnIndex]!; // c.fn is one of POOL_KERNELS
    const a = this.mainArgs;
    for (let i = 0; i < c.args.length; i++) a[i] = c.args[i]!;
    const scratchArg = c.scratchArg ?? -1;
    if (scratchArg >= 0) a[scratchArg] = c.scratchBase ?? 0;
    const threads = Math.min(c.threads, this.threads);
    const chunks = Math.min(c.end - c.begin, threads * CHUNKS_PER_THREAD, CLAIM.MASK);
    if (threads <= 1 || chunks <= 1) {
      a[c.beginArg] = c.begin;
      a[c.endArg] = c.end;
      fn(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]);
      return;
    }
    const ctl = this.ctl;
    for (let i = 0; i < c.args.length; i++) ctl[L.ARGS + i] = c.args[i]!;
    ctl[L.ARENA] = c.arena;
    ctl[L.FN] = fnIndex;
    ctl[L.NARGS] = c.args.length;
    ctl[L.BEGIN_ARG] = c.beginArg;
    ctl[L.END_ARG] = c.endArg;
    ctl[L.RANGE_BEGIN] = c.begin;
    ctl[L.RANGE_END] = c.end;
    ctl[L.SCRATCH_ARG] = scratchArg;
    ctl[L.SCRATCH_BASE] = c.scratchBase ?? 0;
    ctl[L.SCRATCH_STRIDE] = c.scratchStride ?? 0;
    Atomics.store(ctl, L.COMPLETED, 0);
    Atomics.store(ctl, L.ERROR, 0);
    const seq = this.nextSeq();
    Atomics.store(ctl, L.CLAIM, ((seq & 0xfff) << CLAIM.TAG_SHIFT) | (chunks << CLAIM.COUNT_SHIFT));
    this.publish(KIND.CALL, seq);
    // This thread claims chunks like a worker; every finished chunk is counted in COMPLETED, so
    // whoever finishes the last one knows it (and a worker then wakes this thread if it sleeps).
    let trap: unknown;
    const len = c.end - c.begin;
    for (;;) {
      const claim = Atomics.load(ctl, L.CLAIM);
      const j = claim & CLAIM.MASK;
      if (j >= chunks) break;
      if (Atomics.compareExchange(ctl, L.CLAIM, claim, claim + 1) !== claim) continue;
      a[c.beginArg] = c.begin + Math.floor((len * j) / chunks);
      a[c.endArg] = c.begin + Math.floor((len * (j + 1)) / chunks);
      try {
        fn(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]);
      } catch (e) {
        trap ??= e;
      }
      Atomics.add(ctl, L.COMPLETED, 1);
    }
    this.await(L.COMPLETED, chunks);
    if (trap) throw trap;
    this.throwWorkerError();
  }

  /**
   * The dispatch round trip alone (for the bench): a job every worker acknowledges and that runs
   * nothing. A call costs about this when a worker is awake to take chunks.
   */
  ping(): void {
    if (this.workers.length) this.controlJob(KIND.PING, 0);
  }

  /** Stops the workers; later calls run on the calling thread alone. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    livePools.delete(this);
    if (this.workers.length) this.stopWorkers();
    this.threads = 1;
  }

  private seq = 0;

  private nextSeq(): number {
    this.seq = (this.seq + 1) & 0x0fffffff;
    return this.seq;
  }

  /** Publishes job `kind` (everything it reads written already) and wakes the workers if one sleeps. */
  private publish(kind: number, seq = this.nextSeq()): void {
    const ctl = this.ctl;
    Atomics.store(ctl, L.JOB, (seq << 4) | kind);
    for (let i = 0; i < this.workers.length; i++) {
      if (Atomics.load(ctl, L.SLEEP + L.LINE * i)) {
        Atomics.notify(ctl, L.JOB);
        break;
      }
    }
  }

  /** A job every worker runs and acknowledges (register, unregister, ping). */
  private controlJob(kind: number, arena: number): void {
    const ctl = this.ctl;
    ctl[L.ARENA] = arena;
    Atomics.store(ctl, L.ACKS, 0);
    Atomics.store(ctl, L.ERROR, 0);
    this.publish(kind);
    this.await(L.ACKS, this.workers.length);
    this.throwWorkerError();
  }

  /** Spins, then sleeps, until ctl[index] reaches `target` (workers count it up). */
  private await(index: number, target: number): void {
    const ctl = this.ctl;
    let spins = 0;
    let slept = 0;
    for (let v; (v = Atomics.load(ctl, index)) < target; ) {
      if (++spins < 20_000) continue;
      Atomics.store(ctl, L.MAIN_SLEEP, 1);
      if (Atomics.load(ctl, index) === v && Atomics.wait(ctl, index, v, 100) === 'timed-out') {
        slept += 100;
        this.timedOutWaits++;
      }
      Atomics.store(ctl, L.MAIN_SLEEP, 0);
      if (slept > CALL_TIMEOUT_MS) throw new Error(`kernel workers did not finish a call within ${CALL_TIMEOUT_MS / 1000} s`);
    }
  }

  private throwWorkerError(): void {
    if (!Atomics.load(this.ctl, L.ERROR)) return;
    const messages = this.ports.map((p) => receiveMessageOnPort(p)?.message).filter(Boolean);
    throw new Error(messages.join('; ') || 'a kernel worker failed');
  }
}

let shared: KernelPool | undefined;

/** The process's pool, started on first use (TFVLM_KERNEL_THREADS, TFVLM_KERNEL_SPIN_US). */
export function defaultPool(): KernelPool {
  shared ??= new KernelPool();
  return shared;
}
