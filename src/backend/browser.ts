// tfjs set-up in the browser (scripts/build-web.mjs swaps backend/index.ts for this file, so every
// module that imports `tf`, initBackend or withComputeThreads gets these). The choice:
//   WebGPU when navigator.gpu gives an adapter (and the bundle carries tfjs-backend-webgpu),
//   else wasm with SIMD and threads when the page is cross-origin isolated (COOP/COEP),
//   else single-thread wasm (SIMD when the engine has it), else cpu.
// The wasm fast paths (heap-view and fused kernels, the thread-pool switch) go in as under Node when
// tfjs is the verified release; on webgpu they stay out, as tf.getBackend() !== 'wasm' keeps them out
// under Node's TFVLM_BACKEND=cpu. What was chosen, and why the better ones were not, is browserBackend().
import * as tf from '@tensorflow/tfjs-core';
import { TfvlmError } from '../errors.ts';
import { keepHostCopies, refuseSyncReads, type WebGpuBackendInternals } from './webgpu-reads.ts';
import { installFusedKernels } from './fused-kernels.ts';
import { installWasmHeapKernels } from './wasm-kernels.ts';
import { makeThreadpoolSwitch, type ThreadpoolSwitch, type WasmModuleInternals } from './wasm-threadpool.ts';
import { checkTfjsVersions, fastPathsVerified, installedTfjsVersions, tfjsVersionCheck, WASM_FAST_PATHS_VERIFIED_ON, type TfjsVersions } from './tfjs-versions.ts';

export type BackendName = 'webgpu' | 'wasm' | 'cpu';

/** tfjs-backend-wasm's cap on its thread pool in a page (backend.cc: at most 4). */
const MAX_WASM_THREADS = 4;

export interface BrowserBackendInfo {
  backend: BackendName;
  tfjsVersion: string;
  /** wasm: SIMD in use; otherwise null. */
  simd: boolean | null;
  /** Threads ops compute with (wasm: XNNPACK's pool, the calling thread included). */
  threads: number;
  /** The page is cross-origin isolated (COOP/COEP): SharedArrayBuffer, wasm threads, our kernel arenas. */
  crossOriginIsolated: boolean;
  /** webgpu: the adapter's description (vendor, architecture); otherwise null. */
  adapter: string | null;
  /** Why each better backend was not used, e.g. "webgpu: navigator.gpu is absent". */
  notUsed: string[];
  /** Where Vlm.load keeps weight matrices by default here ('stored' needs shared wasm memory: isolation). */
  weights: 'stored' | 'float32';
  /** wasm: whether the fast paths are in (verified tfjs release); otherwise null. */
  fastPaths: boolean | null;
}

let initialised: Promise<BackendName> | undefined;
let info: BrowserBackendInfo | undefined;
let poolSwitch: ThreadpoolSwitch | undefined;

/** The folder the bundle's .wasm files are fetched from (set before the first initBackend if not beside the bundle). */
export const wasmAssets = { base: new URL('./', import.meta.url).href };

function isolated(): boolean {
  return (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true && typeof SharedArrayBuffer === 'function';
}

interface GpuLike {
  requestAdapter(): Promise<{ info?: { vendor?: string; architecture?: string; description?: string } } | null>;
}

async function tryWebgpu(): Promise<{ adapter: string } | string> {
  const gpu = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
  if (!gpu) return 'navigator.gpu is absent (no WebGPU in this browser or context)';
  let adapter;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return `navigator.gpu.requestAdapter() failed: ${(e as Error).message}`;
  }
  if (!adapter) return 'navigator.gpu.requestAdapter() gave no adapter';
  const webgpu = await import('tfvlm:webgpu');
  if (!webgpu.bundled) return 'this bundle was built without @tensorflow/tfjs-backend-webgpu';
  try {
    if (!(await tf.setBackend('webgpu'))) return "tf.setBackend('webgpu') returned false";
    await tf.ready();
    const backend = tf.backend() as unknown as WebGpuBackendInternals;
    keepHostCopies(backend);
    refuseSyncReads(backend, 'which tfjs-backend-webgpu can do before the GPU has finished (a wrong result, not an error)', "load the page's model on wasm instead");
  } catch (e) {
    return (e as Error).message.split('\n')[0] ?? 'failed';
  }
  const i = adapter.info ?? {};
  return { adapter: [i.vendor, i.architecture, i.description].filter(Boolean).join(' ') || 'unnamed adapter' };
}

function activeModule(): WasmModuleInternals {
  return (tf.backend() as unknown as { wasm: WasmModuleInternals }).wasm;
}

async function tryWasm(notUsed: string[]): Promise<{ simd: boolean; threads: number; fastPaths: boolean } | string> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const { off } = checkTfjsVersions(installedTfjsVersions(wasm.version_wasm));
  wasm.setWasmPaths({
    'tfjs-backend-wasm.wasm': new URL('tfjs-backend-wasm.wasm', wasmAssets.base).href,
    'tfjs-backend-wasm-simd.wasm': new URL('tfjs-backend-wasm-simd.wasm', wasmAssets.base).href,
    'tfjs-backend-wasm-threaded-simd.wasm': new URL('tfjs-backend-wasm-threaded-simd.wasm', wasmAssets.base).href,
  });
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  let threads = 1;
  if (!isolated()) {
    notUsed.push('wasm threads: the page is not cross-origin isolated (serve it with COOP: same-origin and COEP: require-corp)');
  } else if (!simd) {
    notUsed.push('wasm threads: this WebAssembly engine has no SIMD, and tfjs ships threads only in its SIMD build');
  } else if (cores < 2) {
    notUsed.push('wasm threads: navigator.hardwareConcurrency is 1');
  } else {
    threads = Math.min(cores, MAX_WASM_THREADS);
  }
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', threads > 1);
  wasm.setThreadsCount(threads);
  try {
    const ok = await seeingCores(2 * threads, () => tf.setBackend('wasm'));
    if (!ok) return "tf.setBackend('wasm') returned false";
    await tf.ready();
  } catch (e) {
    return (e as Error).message.split('\n')[0] ?? 'failed';
  }
  const started = wasm.getThreadsCount();
  if (started < threads) notUsed.push(`wasm threads: asked tfjs-backend-wasm for ${threads}, its thread pool started ${started}`);
  if (started > 1 && !off) {
    const made = makeThreadpoolSwitch(activeModule());
    if (typeof made !== 'string') poolSwitch = made;
  }
  if (fastPathsVerified()) {
    installWasmHeapKernels();
    installFusedKernels();
  }
  return { simd, threads: started, fastPaths: fastPathsVerified() };
}

/**
 * Runs `start` with navigator.hardwareConcurrency reading `cores`. In a page, tfjs-backend-wasm
 * 4.22 sizes its thread pool to hardwareConcurrency / 2 (at most 4; backend.cc, assuming two
 * hyperthreads per core) and ignores setThreadsCount (tensorflow/tfjs#8513): a 2-core machine got
 * one thread. Seeing twice the threads wanted while the backend starts gives one per logical
 * core, as under Node.
 */
async function seeingCores<T>(cores: number, start: () => Promise<T>): Promise<T> {
  const nav = (globalThis as { navigator?: object }).navigator;
  if (!nav) return start();
  Object.defineProperty(nav, 'hardwareConcurrency', { value: cores, configurable: true });
  try {
    return await start();
  } finally {
    delete (nav as { hardwareConcurrency?: number }).hardwareConcurrency;
  }
}

async function tryCpu(): Promise<string | undefined> {
  await import('@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend('cpu'))) return "tf.setBackend('cpu') returned false";
  await tf.ready();
  return undefined;
}

/**
 * Initialise tfjs once and return the backend: `preferred` ('webgpu', 'wasm', 'cpu') must start or a
 * TfvlmError says why; without it the best that starts wins. Later calls return the first answer.
 */
export function initBackend(preferred?: string): Promise<BackendName> {
  if (initialised) return initialised;
  const attempt = (async (): Promise<BackendName> => {
    if (preferred !== undefined && !['webgpu', 'wasm', 'cpu'].includes(preferred)) {
      throw new TfvlmError(`backend '${preferred}' is not a browser backend; use webgpu, wasm or cpu`);
    }
    const notUsed: string[] = [];
    const base = { tfjsVersion: tf.version_core, crossOriginIsolated: isolated(), notUsed };
    if (preferred === undefined || preferred === 'webgpu') {
      const r = await tryWebgpu();
      if (typeof r !== 'string') {
        info = { ...base, backend: 'webgpu', simd: null, threads: 1, adapter: r.adapter, weights: 'float32', fastPaths: null };
        return 'webgpu';
      }
      if (preferred) throw new TfvlmError(`backend 'webgpu' is not available: ${r}`);
      notUsed.push(`webgpu: ${r}`);
    }
    if (preferred === undefined || preferred === 'wasm') {
      const r = await tryWasm(notUsed);
      if (typeof r !== 'string') {
        info = {
          ...base, backend: 'wasm', simd: r.simd, threads: r.threads, adapter: null,
          weights: isolated() ? 'stored' : 'float32', fastPaths: r.fastPaths,
        };
        return 'wasm';
      }
      if (preferred) throw new TfvlmError(`backend 'wasm' is not available: ${r}`);
      notUsed.push(`wasm: ${r}`);
    }
    const err = await tryCpu();
    if (err) throw new TfvlmError(`no tfjs backend could start:\n  ${[...notUsed, `cpu: ${err}`].join('\n  ')}`);
    info = { ...base, backend: 'cpu', simd: null, threads: 1, adapter: null, weights: isolated() ? 'stored' : 'float32', fastPaths: null };
    return 'cpu';
  })();
  initialised = attempt;
  attempt.catch(() => {
    if (initialised === attempt) initialised = undefined;
  });
  return attempt;
}

/** The backend chosen by initBackend and why, or undefined before it ran. */
export function browserBackend(): BrowserBackendInfo | undefined {
  return info;
}

export function activeBackend(): BackendName | undefined {
  return info?.backend;
}

/** Whether results are read synchronously (dataSync): not on webgpu, where a page reads GPU buffers asynchronously. */
export function readsSync(): boolean {
  return info?.backend !== 'webgpu';
}

/** One thread (n ≤ 1) or all the backend started, for the ops that follow (wasm with threads only). */
export function setComputeThreads(n: number): number {
  return poolSwitch ? poolSwitch.use(n) : (info?.threads ?? 1);
}

export function withComputeThreads<T>(n: number, fn: () => T): T {
  if (!poolSwitch) return fn();
  const previous = activeModule().tfjs.getThreadsCount();
  poolSwitch.use(n);
  try {
    return fn();
  } finally {
    poolSwitch.use(previous);
  }
}

/** The Node BackendInfo's fields that mean something in a page (no rss / heap figures). */
export async function backendInfo(): Promise<BrowserBackendInfo & { numTensors: number; numBytes: number; fastPathsVerifiedOn: TfjsVersions; fastPathsOff: string | null }> {
  await initBackend();
  const mem = tf.memory();
  return {
    ...info!, numTensors: mem.numTensors, numBytes: mem.numBytes,
    fastPathsVerifiedOn: { ...WASM_FAST_PATHS_VERIFIED_ON }, fastPathsOff: tfjsVersionCheck()?.off ?? null,
  };
}

export { tf };
