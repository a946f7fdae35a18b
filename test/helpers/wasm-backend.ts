// Tests of the wasm backend's own kernels select that backend themselves: with TFVLM_BACKEND unset,
// initBackend() would take tfjs-node where it is installed and the wasm kernels would go untested.
import assert from 'node:assert/strict';
import { backendInfo, initBackend } from '../../src/backend/index.ts';

/**
 * Starts the wasm backend whatever TFVLM_BACKEND says, and fails (never skips) unless it runs with
 * its fast paths (thread-pool switch, heap-view and fused kernels) in.
 */
export async function startWasmWithFastPaths(): Promise<void> {
  const backend = await initBackend('wasm');
  assert.equal(backend, 'wasm', `another backend (${backend}) was started first in this process`);
  const info = await backendInfo();
  assert.equal(info.fastPaths, true, `the wasm fast paths are off: ${info.fastPathsOff}`);
}
