// tfjs-backend-wasm runs every XNNPACK op on one pthreadpool, the C++ global
// tfjs::backend::threadpool (tfjs-backend-wasm src/cc/backend.cc), fixed at init. Waking the other
// threads costs more than it saves on the small ops of one decode step, so this keeps a second,
// one-thread pool and swaps which of the two the global points at. The global is not exported: it
// is found as the one word of wasm memory whose value get_threads_count() follows.

export interface WasmModuleInternals {
  wasmMemory?: WebAssembly.Memory;
  tfjs: { initWithThreadsCount(n: number): void; getThreadsCount(): number };
}

/**
 * Bytes of memory searched: the global lives in the module's static data, laid out from address
 * 1024 up (it sits near 23 KB in tfjs-backend-wasm 4.22), far below this.
 */
const STATIC_DATA_LIMIT = 4 << 20;

export interface ThreadpoolSwitch {
  /** Threads of the pool the backend started with. */
  readonly started: number;
  /** Points the backend at the one-thread pool (n ≤ 1) or the started one; returns the count. */
  use(n: number): number;
}

/**
 * Creates the one-thread pool and locates the global. On failure returns the reason; the backend
 * keeps (or gets back) a pool of the started size.
 */
export function makeThreadpoolSwitch(module: WasmModuleInternals): ThreadpoolSwitch | string {
  const memory = module.wasmMemory;
  const started = module.tfjs.getThreadsCount();
  if (!memory) return 'the wasm module does not expose its memory';
  if (started <= 1) return 'the backend started one thread';
  const words = Math.min(memory.buffer.byteLength, STATIC_DATA_LIMIT) / 4;
  const heap = () => new Int32Array(memory.buffer);
  const before = heap().slice(0, words);
  // Allocates a one-thread pool and points the global at it (xnn_initialize runs once only).
  module.tfjs.initWithThreadsCount(1);
  const after = heap();
  let found: { index: number; full: number; single: number } | undefined;
  let matches = 0;
  for (let i = 0; i < before.length; i++) {
    if (before[i] === after[i] || before[i] === 0 || after[i] === 0) continue;
    const single = after[i]!;
    after[i] = before[i]!;
    const count = module.tfjs.getThreadsCount();
    after[i] = single;
    if (count === started) {
      found = { index: i, full: before[i]!, single };
      matches++;
    }
  }
  if (!found || matches !== 1) {
    // Back to a pool of the started size (a new one: the old pointer could not be located).
    module.tfjs.initWithThreadsCount(started);
    return `cannot locate tfjs-backend-wasm's threadpool global (${matches} candidates)`;
  }
  const { index, full, single } = found;
  heap()[index] = full;
  return {
    started,
    use(n) {
      heap()[index] = n <= 1 ? single : full;
      return module.tfjs.getThreadsCount();
    },
  };
}
