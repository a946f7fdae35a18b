// Starts @tensorflow/tfjs-backend-wasm: the threaded SIMD build with one thread per core when it
// can run here, else the single-threaded SIMD build, with the reason kept for backendInfo(). The
// fast paths (thread-pool switch, heap-view and fused kernels) go in only when the installed tfjs is
// the release they were verified on (tfjs-versions.ts); otherwise tfjs runs its own kernels.
import * as tf from '@tensorflow/tfjs-core';
import { createRequire } from 'node:module';
import os from 'node:os';
import { TfvlmError } from '../errors.ts';
import { prepareThreadedStart, type ThreadedStart } from './wasm-threads.ts';
import { installFusedKernels } from './fused-kernels.ts';
import { installWasmHeapKernels } from './wasm-kernels.ts';
import { makeThreadpoolSwitch, type ThreadpoolSwitch, type WasmModuleInternals } from './wasm-threadpool.ts';
import { checkTfjsVersions, fastPathsVerified, installedTfjsVersions, type TfjsVersions } from './tfjs-versions.ts';

/** XNNPACK's cap in tfjs-backend-wasm (src/cc/backend.cc: max_num_threads; the pool has 8 workers). */
export const MAX_WASM_THREADS = 8;

/** How long the threaded build may take to load its workers before we fall back. */
const DEFAULT_START_TIMEOUT_MS = 30_000;

export interface WasmThreading {
  /** Threads asked for (TFVLM_THREADS, default one per core), after the cap. */
  requested: number;
  /** Why the backend runs on fewer threads than requested, or null. */
  fallback: string | null;
  /** Threads the backend started; setWasmThreads chooses between 1 and this. */
  started: number;
  /** Why setWasmThreads cannot switch, or null when it can (or only one thread started). */
  switchUnavailable: string | null;
}

let threading: WasmThreading | undefined;
let poolSwitch: ThreadpoolSwitch | undefined;

/**
 * From now on XNNPACK ops use one thread (n ≤ 1) or every thread the backend started (n > 1).
 * One thread wins on the small ops of a decode step, all threads on large matmuls. Returns the
 * count in effect (unchanged when the backend cannot switch).
 */
export function setWasmThreads(n: number): number {
  return poolSwitch ? poolSwitch.use(n) : (threading?.started ?? 1);
}

/** The Emscripten module behind the active wasm backend. */
function activeModule(): WasmModuleInternals {
  return (tf.backend() as unknown as { wasm: WasmModuleInternals }).wasm;
}

/** Threads XNNPACK ops use now (tfjs's own getThreadsCount() keeps the count at init). */
export function wasmThreadsInEffect(): number {
  return activeModule().tfjs.getThreadsCount();
}

/** What startWasm settled on, or undefined before it ran. */
export function wasmThreading(): WasmThreading | undefined {
  return threading;
}

function positiveInt(name: string, raw: string): number {
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1) {
    throw new TfvlmError(`${name}=${raw} is not a positive integer`);
  }
  return Number(raw);
}

/** TFVLM_THREADS, or one thread per core; throws a TfvlmError for a malformed value. */
export function requestedThreads(raw: string | undefined = process.env.TFVLM_THREADS): number {
  return raw === undefined || raw === '' ? os.availableParallelism() : positiveInt('TFVLM_THREADS', raw);
}

function startTimeoutMs(): number {
  const raw = process.env.TFVLM_THREADS_TIMEOUT_MS;
  return raw ? positiveInt('TFVLM_THREADS_TIMEOUT_MS', raw) : DEFAULT_START_TIMEOUT_MS;
}

type WasmModule = typeof import('@tensorflow/tfjs-backend-wasm');

/**
 * tfjs-backend-wasm sizes its thread pool from emscripten_num_logical_cores() / 2 (it assumes two
 * hyperthreads per core) and caps the requested count by that; the glue answers with
 * os.cpus().length. While the module starts, os.cpus reports 2 × `threads` entries.
 */
function reportCoresFor(threads: number): () => void {
  const cpus = os.cpus;
  // The glue reads only the count. os.cpus() is empty on some platforms: a blank entry stands in then.
  const one = cpus()[0] ?? { model: '', speed: 0, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } };
  os.cpus = () => Array.from({ length: 2 * threads }, () => one);
  return () => {
    os.cpus = cpus;
  };
}

/**
 * Emscripten's Node glue adds process listeners that rethrow every uncaught exception and
 * unhandled rejection from inside the glue: Node then prints a whole line of minified glue and
 * exits with code 7 instead of reporting the error. They serve only Emscripten's exit(), which tfjs
 * never calls, so the ones a start added are removed again.
 */
function dropGlueProcessListeners(): () => void {
  const uncaught = new Set(process.listeners('uncaughtException'));
  const unhandled = new Set(process.listeners('unhandledRejection'));
  return () => {
    for (const l of process.listeners('uncaughtException')) {
      if (!uncaught.has(l)) process.removeListener('uncaughtException', l);
    }
    for (const l of process.listeners('unhandledRejection')) {
      if (!unhandled.has(l)) process.removeListener('unhandledRejection', l);
    }
  };
}

/** Resolves with the threaded start's outcome: undefined when it ran, else why it did not. */
async function tryThreaded(wasm: WasmModule, threads: number): Promise<string | undefined> {
  let start: ThreadedStart;
  try {
    start = prepareThreadedStart(threads);
  } catch (e) {
    return `cannot install the pthread Worker shim: ${(e as Error).message}`;
  }
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  const restoreCpus = reportCoresFor(threads);
  const timeoutMs = startTimeoutMs();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`threaded wasm did not start within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    const outcome = await Promise.race([
      tf.setBackend('wasm').then((ok) => (ok ? undefined : 'tf.setBackend(wasm) returned false for the threaded build')),
      start.failed.catch((e: Error) => `a pthread worker failed: ${e.message.split('\n')[0]}`),
      timedOut,
    ]);
    if (outcome !== undefined) {
      await start.abandon();
      return outcome;
    }
    return undefined;
  } catch (e) {
    await start.abandon();
    return (e as Error).message.split('\n')[0];
  } finally {
    clearTimeout(timer);
    restoreCpus();
    start.finish();
  }
}

/** The heap-view and fused kernels, when the version check at start allowed them. */
function installFastKernels(): void {
  if (!fastPathsVerified()) return;
  installWasmHeapKernels();
  installFusedKernels();
}

/**
 * Starts the wasm backend with TFVLM_THREADS threads (default one per core, at most 8). Returns
 * undefined on success or the reason the backend could not start at all; a threaded start that
 * fails falls back to one thread and the reason is kept in wasmThreading(). `versions` stands in
 * for the installed tfjs versions in the fast-path check (tests pass unverified ones).
 */
export async function startWasm(versions?: TfjsVersions): Promise<string | undefined> {
  let requested = requestedThreads();
  let fallback: string | null = null;
  if (requested > MAX_WASM_THREADS) {
    fallback = `TFVLM_THREADS=${requested} capped at tfjs-backend-wasm's maximum of ${MAX_WASM_THREADS}`;
    requested = MAX_WASM_THREADS;
  }
  const restoreListeners = dropGlueProcessListeners();
  try {
    return await start(requested, fallback, versions);
  } finally {
    restoreListeners();
  }
}

async function start(requested: number, capped: string | null, versions: TfjsVersions | undefined): Promise<string | undefined> {
  let fallback = capped;
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const { off } = checkTfjsVersions(versions ?? installedTfjsVersions(wasm.version_wasm));
  if (off) process.emitWarning(`wasm fast paths off, tfjs runs its own kernels: ${off}`, 'TfvlmWarning');
  const require = createRequire(import.meta.url);
  wasm.setWasmPaths(require.resolve('@tensorflow/tfjs-backend-wasm').replace(/[^/\\]+$/, ''));

  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  if (requested > 1 && !simd) {
    fallback = 'this WebAssembly engine has no SIMD, and tfjs ships threads only in its SIMD build';
  } else if (requested > 1) {
    const failure = await tryThreaded(wasm, requested);
    if (failure === undefined) {
      const started = wasm.getThreadsCount();
      if (started < requested) fallback ??= `tfjs-backend-wasm started ${started} of ${requested} threads`;
      const made = off ?? makeThreadpoolSwitch(activeModule());
      if (typeof made !== 'string') poolSwitch = made;
      threading = { requested, fallback, started, switchUnavailable: typeof made === 'string' ? made : null };
      installFastKernels();
      return undefined;
    }
    fallback = failure;
    process.emitWarning(`wasm threads unavailable, running single-threaded: ${failure}`, 'TfvlmWarning');
  }

  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  wasm.setThreadsCount(1);
  const ok = await tf.setBackend('wasm');
  if (!ok) return `tf.setBackend('wasm') returned false`;
  threading = { requested, fallback, started: 1, switchUnavailable: null };
  installFastKernels();
  return undefined;
}
