// Preload (node --import) for tfjs-versions.test.ts: starts the wasm backend as if tfjs-backend-wasm
// 4.99.0 were installed, so what runs next in the process (a test file, the tfvlm command)
// finds the backend up without its fast paths. Throws if they went in anyway.
import { backendInfo, initBackend } from '../../src/backend/index.ts';
import { fusedKernelsActive } from '../../src/backend/fused-kernels.ts';
import { WASM_FAST_PATHS_VERIFIED_ON } from '../../src/backend/tfjs-versions.ts';

const UNVERIFIED_WASM = '4.99.0';

await initBackend('wasm', {
  tfjsVersions: { ...WASM_FAST_PATHS_VERIFIED_ON, '@tensorflow/tfjs-backend-wasm': UNVERIFIED_WASM },
});
const info = await backendInfo();
if (info.fastPaths !== false || fusedKernelsActive()) {
  throw new Error(`the fast paths went in with tfjs-backend-wasm ${UNVERIFIED_WASM}`);
}
