// The library in a page: `npm run build:web` bundles this file into dist-web/tfvlm.js. The engine is
// the same code as under Node — tokenizer, chat template, Pillow-exact preprocessing, the models,
// generation — with four things swapped for the browser (scripts/build-web.mjs BROWSER_MODULES):
// file access (io/host-browser.ts: a model folder fetched by URL, safetensors in HTTP ranges, the
// Cache API), the backend choice (backend/browser.ts: WebGPU, else wasm with threads when the page
// is cross-origin isolated, else one-thread wasm), the kernel pool (one thread) and image decoding
// without Node's Buffer (io/png-gif-bmp.browser.ts: the same RGBA as under Node).
//
//   const vlm = await loadVlm('/models/tfvlm-demo/');
//   const image = await imageBytes(fileInput.files[0]);
//   const it = vlm.stream({ messages: [{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: 'Describe this image.' }] }] }, { maxNewTokens: 64 });
//   for (let r = await it.next(); !r.done; r = await it.next()) out.textContent += r.value;
import { Vlm, type VlmLoadOptions } from './engine.ts';
import { browserBackend, initBackend, wasmAssets, type BrowserBackendInfo } from './backend/browser.ts';
import { browserHost, type MountOptions } from './io/host-browser.ts';
import { prepareKernelModule } from './kernels/module-bytes.browser.ts';
import { resolveModel } from './io/hub/browser.ts';
import { TfvlmError } from './errors.ts';
import type { DecodedImage } from './io/image.ts';

export { Vlm, DEMO_MODEL_DIR, type VlmRequest, type VlmLoadOptions, type GenerateCallOptions, type GenerationOutput } from './engine.ts';
export { TfvlmError } from './errors.ts';
export { browserBackend, type BrowserBackendInfo, type BackendName } from './backend/browser.ts';
export { browserHost, BrowserHost, clearModelCache, CHUNK_BYTES, MODEL_FOLDER_FILES, type MountOptions } from './io/host-browser.ts';
export { setHost, host, type Host } from './io/host.ts';
export { decodeImage, loadImage, type DecodedImage, type ImageSource } from './io/image.ts';
export { tf } from './backend/browser.ts';

/** The demo model folder next to the bundle's folder: `<bundle>/../weights/tfvlm-demo/`. */
export const DEMO_MODEL_URL: string = new URL('../weights/tfvlm-demo/', import.meta.url).href;

export interface BrowserLoadOptions extends VlmLoadOptions {
  /** 'webgpu', 'wasm' or 'cpu'; default: the best that starts (see BrowserBackendInfo.notUsed). */
  backend?: 'webgpu' | 'wasm' | 'cpu';
  /** Folder of the bundle's .wasm files (default: the bundle's own folder). */
  assetBase?: string;
  /** Bytes of weights fetched (network or cache) so far, and in all. */
  onFetchProgress?: MountOptions['onProgress'];
  /** Keep fetched weights in the Cache API (default true). */
  cache?: boolean;
  signal?: AbortSignal;
}

/**
 * Starts the backend (once per page), then fetches and loads the model folder at `modelUrl` (absolute,
 * or relative to the page; default DEMO_MODEL_URL). Weights stay in their stored precision in our
 * kernel arenas where the page can hold them (wasm or cpu in a cross-origin-isolated page); on
 * WebGPU, and without isolation, they are float32 tensors of the backend. `options.weights` overrides.
 */
export async function loadVlm(modelUrl: string = DEMO_MODEL_URL, options: BrowserLoadOptions = {}): Promise<Vlm> {
  const { backend, assetBase, onFetchProgress, cache, signal, ...load } = options;
  if (assetBase !== undefined) {
    wasmAssets.base = new URL(assetBase, browserHost.cwd()).href;
    browserHost.assetBase = wasmAssets.base;
  }
  await initBackend(backend);
  const info = browserBackend()!;
  const weights = load.weights ?? (load.adapter !== undefined ? 'float32' : info.weights);
  if (weights === 'stored' && !info.crossOriginIsolated) {
    throw new TfvlmError("weights 'stored' need shared WebAssembly memory, which only a cross-origin-isolated page has (COOP/COEP); load with weights 'float32'");
  }
  // Our kernels (linear.wasm) run on shared memory: the weight arenas, and on threaded wasm the tfjs heap.
  if (info.crossOriginIsolated && info.backend !== 'webgpu') await prepareKernelModule(new URL('linear.wasm', browserHost.assetBase));
  const dir = await resolveModel(modelUrl, {}, { onProgress: onFetchProgress, cache, signal });
  return Vlm.load(dir, { ...load, weights });
}

/** The backend the page runs on, starting it if needed (what a page shows as "Backend: …"). */
export async function startBackend(preferred?: 'webgpu' | 'wasm' | 'cpu'): Promise<BrowserBackendInfo> {
  await initBackend(preferred);
  return browserBackend()!;
}

/**
 * An image's encoded bytes, for a request's `{ type: 'image', image }` part: decoding them is the same
 * code as under Node, so the pixels are Node's. Takes a File or Blob (an <input type=file>, a drop), an
 * ArrayBuffer or bytes, or a URL (fetched).
 */
export async function imageBytes(src: Blob | ArrayBuffer | ArrayBufferView | string | URL): Promise<Uint8Array> {
  if (src instanceof Uint8Array) return src;
  if (ArrayBuffer.isView(src)) return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  if (src instanceof ArrayBuffer) return new Uint8Array(src);
  if (typeof src === 'string' || src instanceof URL) {
    const url = new URL(src, browserHost.cwd()).href;
    const res = await fetch(url);
    if (!res.ok) throw new TfvlmError(`image ${url}: HTTP ${res.status} ${res.statusText}`.trimEnd());
    return new Uint8Array(await res.arrayBuffer());
  }
  return new Uint8Array(await src.arrayBuffer());
}

/**
 * The pixels of an ImageBitmap (or a canvas, a video frame) as a decoded image, for when the page has
 * no encoded bytes. The browser decoded these pixels, not tfvlm: they can differ from Node's (colour
 * management, JPEG IDCT), so prefer imageBytes when the file is at hand.
 */
export function imageFromBitmap(bitmap: ImageBitmap | HTMLCanvasElement | OffscreenCanvas): DecodedImage {
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new TfvlmError('imageFromBitmap: no 2d canvas context');
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  return { width, height, mode: 'RGBA', data: new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.byteLength) };
}
