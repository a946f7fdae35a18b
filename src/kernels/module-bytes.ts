// linear.wasm, compiled. Under Node it is read beside this file and compiled synchronously (about
// 22 KB). The browser bundle swaps this file for module-bytes.browser.ts, which compiles it
// asynchronously before the first load (browsers refuse large synchronous compiles on the main thread).
import { readFileSync } from 'node:fs';

export function compileKernelModule(): WebAssembly.Module {
  return new WebAssembly.Module(readFileSync(new URL('./linear.wasm', import.meta.url)));
}
