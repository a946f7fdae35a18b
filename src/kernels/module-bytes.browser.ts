// The browser bundle's linear.wasm (scripts/build-web.mjs swaps module-bytes.ts for this file and
// copies linear.wasm beside the bundle): fetched and compiled by prepareKernelModule(), which the
// browser entry awaits before a model loads; compileKernelModule() then hands the compiled module over.
let compiled: WebAssembly.Module | undefined;

/** Fetches and compiles linear.wasm (from beside the bundle unless `url` is given). */
export async function prepareKernelModule(url: string | URL = new URL('./linear.wasm', import.meta.url)): Promise<void> {
  if (compiled) return;
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${String(url)}: HTTP ${res.status} (the kernels' linear.wasm belongs beside the bundle)`);
  compiled = await WebAssembly.compile(await res.arrayBuffer());
}

export function compileKernelModule(): WebAssembly.Module {
  if (!compiled) throw new Error('linear.wasm is not compiled yet: await prepareKernelModule() first');
  return compiled;
}
