// The wasm fast paths reach past tfjs's public API into one release's internals: wasm-threadpool.ts
// finds a C++ global by scanning tfjs-backend-wasm's memory and writes to it, wasm-kernels.ts
// replaces its Slice/Unpack/SplitV/BatchMatMul kernels, and fused-kernels.ts registers kernels that
// read and write its heap through backend methods. They were verified on the versions below
// (package.json pins them). wasm.ts checks the installed versions once, at start; with any other
// release it leaves the fast paths out, tfjs runs its own kernels, and the reason is kept here for
// backendInfo() (`tfvlm env`).
import * as tf from '@tensorflow/tfjs-core';

/** The tfjs releases the wasm fast paths were verified on, by package. */
export const WASM_FAST_PATHS_VERIFIED_ON = {
  '@tensorflow/tfjs-core': '4.22.0',
  '@tensorflow/tfjs-backend-wasm': '4.22.0',
} as const;

export type TfjsVersions = { [P in keyof typeof WASM_FAST_PATHS_VERIFIED_ON]: string };

export interface TfjsVersionCheck {
  installed: TfjsVersions;
  /** Why the fast paths stay off (a package is not at its verified version), or null. */
  off: string | null;
}

let last: TfjsVersionCheck | undefined;

/** The running versions: tfjs-core's own constant and the given tfjs-backend-wasm module's (version_wasm). */
export function installedTfjsVersions(wasmVersion: string): TfjsVersions {
  return { '@tensorflow/tfjs-core': tf.version_core, '@tensorflow/tfjs-backend-wasm': wasmVersion };
}

/** Why the fast paths must stay off with `installed`, or null when every package is at its verified version. */
export function unverifiedTfjs(installed: TfjsVersions): string | null {
  const differing = (Object.keys(WASM_FAST_PATHS_VERIFIED_ON) as (keyof TfjsVersions)[])
    .filter((pkg) => installed[pkg] !== WASM_FAST_PATHS_VERIFIED_ON[pkg])
    .map((pkg) => `${pkg} ${installed[pkg]} is installed, verified on ${WASM_FAST_PATHS_VERIFIED_ON[pkg]}`);
  return differing.length ? `unverified tfjs: ${differing.join('; ')}` : null;
}

/** Checks `installed` (wasm.ts, at start) and keeps the answer for the installers and backendInfo(). */
export function checkTfjsVersions(installed: TfjsVersions): TfjsVersionCheck {
  last = { installed: { ...installed }, off: unverifiedTfjs(installed) };
  return last;
}

/** The check made when the wasm backend started, or undefined before. */
export function tfjsVersionCheck(): TfjsVersionCheck | undefined {
  return last;
}

/** Whether the fast paths may be installed: the wasm start checked the versions and they are the verified ones. */
export function fastPathsVerified(): boolean {
  return last !== undefined && last.off === null;
}
