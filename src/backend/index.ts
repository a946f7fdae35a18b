// One place where tfjs is set up. Picks the best backend present at run time:
// tfjs-node-gpu → tfjs-node → webgpu (a real GPU adapter only) → wasm (SIMD, XNNPACK) → cpu.
// TFVLM_BACKEND overrides (TFVLM_BACKEND=webgpu takes any adapter, SwiftShader included).
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { TfvlmError } from '../errors.ts';
import { missingNativeBinding } from './native-binding.ts';
import { setWasmThreads, startWasm, wasmThreading, wasmThreadsInEffect } from './wasm.ts';
import { tfjsVersionCheck, WASM_FAST_PATHS_VERIFIED_ON, type TfjsVersions } from './tfjs-versions.ts';
import { startWebGpu, webGpuAdapter, type WebGpuAdapter } from './webgpu.ts';

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

/** Preference order, best first. `tensorflow` is the name tfjs-node registers. */
const CANDIDATES: { name: BackendName; pkg: string; tfName: string }[] = [
  { name: 'tensorflow-gpu', pkg: '@tensorflow/tfjs-node-gpu', tfName: 'tensorflow' },
  { name: 'tensorflow', pkg: '@tensorflow/tfjs-node', tfName: 'tensorflow' },
  { name: 'webgpu', pkg: '@tensorflow/tfjs-backend-webgpu', tfName: 'webgpu' },
  { name: 'wasm', pkg: '@tensorflow/tfjs-backend-wasm', tfName: 'wasm' },
  { name: 'cpu', pkg: '@tensorflow/tfjs-backend-cpu', tfName: 'cpu' },
];

const ALIASES: Record<string, BackendName> = {
  'tensorflow-gpu': 'tensorflow-gpu', 'node-gpu': 'tensorflow-gpu', gpu: 'tensorflow-gpu',
  tensorflow: 'tensorflow', node: 'tensorflow',
  webgpu: 'webgpu', wasm: 'wasm', cpu: 'cpu',
};

let initialised: Promise<BackendName> | undefined;
let chosen: BackendName | undefined;

/** The folder of an installed package, or undefined (the import then says why it is missing). */
function installedAt(pkg: string): string | undefined {
  try {
    return path.dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
  } catch {
    return undefined;
  }
}

async function tryLoad(pkg: string): Promise<string | undefined> {
  try {
    const dir = pkg.startsWith('@tensorflow/tfjs-node') ? installedAt(pkg) : undefined;
    const missing = dir === undefined ? undefined : missingNativeBinding(dir);
    if (missing) return missing;
    await import(pkg);
    return undefined;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

export interface BackendStartOptions {
  /**
   * The tfjs versions the wasm start checks against WASM_FAST_PATHS_VERIFIED_ON, instead of the
   * installed ones (tests pass an unverified release to see the fast paths left out).
   */
  tfjsVersions?: TfjsVersions;
  /**
   * What is starting the backend, when it reads results synchronously (dataSync; e.g. 'training'):
   * the automatic choice then passes over webgpu, which cannot in Node (readsSync), and
   * TFVLM_BACKEND=webgpu stops with an error naming it.
   */
  syncReads?: string;
}

/** Starts candidate `c`; undefined, or why it did not. `forced`: named by TFVLM_BACKEND (or `preferred`). */
async function activate(c: (typeof CANDIDATES)[number], options: BackendStartOptions, forced: boolean): Promise<string | undefined> {
  // tfjs-backend-webgpu registers itself on import only once navigator.gpu exists: startWebGpu imports it.
  if (c.name === 'webgpu' && options.syncReads) {
    const why = `${options.syncReads} reads results synchronously, which the webgpu backend cannot do in Node`;
    if (forced) throw new TfvlmError(`${why}; run it with TFVLM_BACKEND=wasm`);
    return why;
  }
  const loadError = c.name === 'webgpu' ? undefined : await tryLoad(c.pkg);
  if (loadError) return loadError;
  try {
    if (c.name === 'webgpu') {
      const err = await startWebGpu({ realGpuOnly: !forced });
      if (err) return err;
    } else if (c.name === 'wasm') {
      const err = await startWasm(options.tfjsVersions);
      if (err) return err;
    } else {
      const ok = await tf.setBackend(c.tfName);
      if (!ok) return `tf.setBackend('${c.tfName}') returned false`;
      // tfjs-backend-cpu prints an "install our node backend" banner on its first tensor in Node;
      // tfvlm chose this backend knowingly (`tfvlm env` says which ran and why).
      if (c.name === 'cpu') (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
    }
    await tf.ready();
    return undefined;
  } catch (e) {
    if (e instanceof TfvlmError) throw e;
    return (e as Error).message.split('\n')[0];
  }
}

/**
 * Initialise tfjs once and return the active backend. With TFVLM_BACKEND set (or `preferred`
 * given), that backend must load or a TfvlmError says why; otherwise the first that loads wins.
 * Once a backend is up, later calls return it whatever they pass.
 */
export function initBackend(
  preferred: string | undefined = process.env.TFVLM_BACKEND,
  options: BackendStartOptions = {},
): Promise<BackendName> {
  if (initialised) return initialised;
  const attempt = (async (): Promise<BackendName> => {
    if (preferred) {
      const name = ALIASES[preferred.toLowerCase()];
      if (!name) {
        throw new TfvlmError(
          `TFVLM_BACKEND=${preferred} is not a backend; use one of ${Object.keys(ALIASES).join(', ')}`,
        );
      }
      const c = CANDIDATES.find((x) => x.name === name)!;
      const err = await activate(c, options, true);
      if (err) throw new TfvlmError(`backend '${name}' (${c.pkg}) is not available: ${err}`);
      chosen = name;
      return name;
    }
    const failures: string[] = [];
    for (const c of CANDIDATES) {
      const err = await activate(c, options, false);
      if (!err) {
        chosen = c.name;
        return c.name;
      }
      failures.push(`${c.name}: ${err}`);
    }
    throw new TfvlmError(`no tfjs backend could start:\n  ${failures.join('\n  ')}`);
  })();
  initialised = attempt;
  // A failed start is not remembered: the next call (e.g. after fixing TFVLM_BACKEND) tries again.
  attempt.catch(() => {
    if (initialised === attempt) initialised = undefined;
  });
  return attempt;
}

/** The backend chosen by initBackend, or undefined before it ran. */
export function activeBackend(): BackendName | undefined {
  return chosen;
}

/**
 * Whether results can be read synchronously (dataSync). Not on webgpu in Node: tfjs reads a GPU
 * buffer synchronously through an OffscreenCanvas, which Node lacks; read those with tensor.data().
 */
export function readsSync(): boolean {
  return chosen !== 'webgpu';
}

export interface BackendInfo {
  backend: BackendName;
  tfjsVersion: string;
  simd: boolean | null;
  /** Threads ops compute with now (wasm: XNNPACK's pool, main thread included). */
  threads: number;
  /** wasm: threads asked for (TFVLM_THREADS, default one per core); otherwise null. */
  threadsRequested: number | null;
  /** wasm: threads started; setComputeThreads switches between 1 and this. Otherwise null. */
  threadsStarted: number | null;
  /** wasm: why fewer threads than requested run (e.g. the threaded build could not start), or null. */
  threadsFallback: string | null;
  /** wasm: the @tensorflow/tfjs-backend-wasm version running (as the start checked it); otherwise null. */
  wasmVersion: string | null;
  /** The tfjs versions the wasm fast paths were verified on (WASM_FAST_PATHS_VERIFIED_ON). */
  fastPathsVerifiedOn: TfjsVersions;
  /** wasm: whether the fast paths (thread-pool switch, heap-view and fused kernels) are in; otherwise null. */
  fastPaths: boolean | null;
  /** wasm: why the fast paths are left out (the installed tfjs is not the verified release), or null. */
  fastPathsOff: string | null;
  /** webgpu: the adapter the backend runs on; otherwise null. */
  webgpuAdapter: WebGpuAdapter | null;
  numTensors: number;
  numBytes: number;
  rssMB: number;
  heapUsedMB: number;
}

/**
 * From now on ops compute on one thread (n ≤ 1) or on every thread the backend started (n > 1):
 * one thread is faster for the small ops of a decode step, all threads for large matmuls (see
 * bench/threads.ts). Returns the thread count in effect; backends other than wasm keep theirs.
 */
export function setComputeThreads(n: number): number {
  return chosen === 'wasm' ? setWasmThreads(n) : 1;
}

/** Runs `fn` with setComputeThreads(n) in effect, then restores the previous count. */
export function withComputeThreads<T>(n: number, fn: () => T): T {
  if (chosen !== 'wasm') return fn();
  const previous = wasmThreadsInEffect();
  setWasmThreads(n);
  try {
    return fn();
  } finally {
    setWasmThreads(previous);
  }
}

export async function backendInfo(): Promise<BackendInfo> {
  const backend = await initBackend();
  const env = tf.env();
  const simd = backend === 'wasm' ? Boolean(await env.getAsync('WASM_HAS_SIMD_SUPPORT')) : null;
  const threads = backend === 'wasm' ? wasmThreadsInEffect() : 1;
  const threading = backend === 'wasm' ? wasmThreading() : undefined;
  const versions = backend === 'wasm' ? tfjsVersionCheck() : undefined;
  const mem = tf.memory();
  const usage = process.memoryUsage();
  return {
    backend,
    tfjsVersion: tf.version_core,
    simd,
    threads,
    threadsRequested: threading?.requested ?? null,
    threadsStarted: threading?.started ?? null,
    threadsFallback: threading?.fallback ?? null,
    wasmVersion: versions?.installed['@tensorflow/tfjs-backend-wasm'] ?? null,
    fastPathsVerifiedOn: { ...WASM_FAST_PATHS_VERIFIED_ON },
    fastPaths: versions ? versions.off === null : null,
    fastPathsOff: versions?.off ?? null,
    webgpuAdapter: backend === 'webgpu' ? (webGpuAdapter() ?? null) : null,
    numTensors: mem.numTensors,
    numBytes: mem.numBytes,
    rssMB: usage.rss / 2 ** 20,
    heapUsedMB: usage.heapUsed / 2 ** 20,
  };
}

export type { WebGpuAdapter };
export { tf };
