// Synchronous reads on tfjs-backend-webgpu, set up alike by Node's start (webgpu.ts) and the page's
// (browser.ts): tensors made from host data keep their host values, and a synchronous read of a
// GPU result is refused with a clear error rather than done.
import { TfvlmError } from '../errors.ts';

// tfjs-backend-webgpu internals, as in the pinned 4.22.0 (src/backend_webgpu.ts).
export interface WebGpuBackendInternals {
  tensorMap: { get(dataId: object): { values: unknown } | undefined };
  uploadToGPU(dataId: object): void;
  readSync(dataId: object): unknown;
}

/**
 * tfjs-backend-webgpu drops a tensor's host values once it uploads them (backend_webgpu.ts
 * uploadToGPU), so a later dataSync reads the GPU buffer back: through an OffscreenCanvas, which
 * Node does not have, and in a page a slow round trip. The models read their inputs (ids, masks,
 * pixels) with dataSync after ops used them, so tensors made from host data keep their host values
 * here while they live; results the GPU computes are read asynchronously (tensor.data()).
 */
export function keepHostCopies(backend: WebGpuBackendInternals): void {
  const upload = backend.uploadToGPU.bind(backend);
  backend.uploadToGPU = (dataId: object) => {
    const data = backend.tensorMap.get(dataId);
    const values = data?.values;
    upload(dataId);
    if (data && values != null) data.values = values;
  };
}

/**
 * Refuses dataSync of a GPU result (a tensor without host values), saying `why` it cannot be done:
 * in Node tfjs needs an OffscreenCanvas for it; in a page it can run before the GPU work finishes
 * (Chromium 156, SwiftShader: an int32 sum read back as 0), a wrong answer without an error. Host
 * values (keepHostCopies) are still read synchronously.
 */
export function refuseSyncReads(backend: WebGpuBackendInternals, why: string, instead = 'run it on another backend (TFVLM_BACKEND=wasm)'): void {
  const readSync = backend.readSync.bind(backend);
  backend.readSync = (dataId: object) => {
    if (backend.tensorMap.get(dataId)?.values == null) {
      throw new TfvlmError(`this operation reads a GPU result synchronously (dataSync), ${why}; ${instead}`);
    }
    return readSync(dataId);
  };
}
