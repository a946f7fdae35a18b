// Starts @tensorflow/tfjs-backend-webgpu in Node through the `webgpu` package (Dawn's Node bindings).
// Both are imported only when asked for, so nothing loads Dawn unless the webgpu backend is tried.
// Dawn finds GPUs through Vulkan (Linux), Metal (macOS) or D3D12 (Windows); with no GPU, Vulkan's
// loader can be pointed at SwiftShader, a CPU Vulkan driver, to test the backend (far slower than wasm).
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { TfvlmError } from '../errors.ts';
import { keepHostCopies, refuseSyncReads, type WebGpuBackendInternals } from './webgpu-reads.ts';

/** Where Debian's `chromium` package puts its SwiftShader Vulkan driver manifest (`dpkg -L chromium`). */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** What the WebGPU adapter says about itself (GPUAdapterInfo), for `tfvlm env`. */
export interface WebGpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** The adapter is a software fallback (SwiftShader is one): correct, but slower than wasm. */
  isFallbackAdapter: boolean;
  swiftShader: boolean;
}

// The slice of the WebGPU API used here (the `webgpu` package's own types pull in @webgpu/types globally).
export interface GpuAdapter {
  readonly info: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter?: boolean };
  readonly isFallbackAdapter?: boolean;
}
interface Gpu {
  requestAdapter(options?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<GpuAdapter | null>;
}
interface DawnModule {
  create(flags: string[]): Gpu;
  globals: object;
}

let gpu: Gpu | undefined;
let adapter: WebGpuAdapter | undefined;

/** The adapter of the running webgpu backend, or undefined before startWebGpu succeeded. */
export function webGpuAdapter(): WebGpuAdapter | undefined {
  return adapter;
}

/**
 * navigator.gpu from Dawn, installed once. tfjs-backend-webgpu registers itself on import only when
 * navigator.gpu exists, and its backend uses the WebGPU globals (GPUBufferUsage, …).
 */
async function dawnGpu(): Promise<Gpu> {
  if (gpu) return gpu;
  const dawn = (await import('webgpu')) as unknown as DawnModule;
  Object.assign(globalThis, dawn.globals);
  const created = dawn.create([]);
  // Node 21+ has a global navigator (a getter); Node 20 has none.
  const nav = (globalThis as { navigator?: object }).navigator;
  if (nav) Object.defineProperty(nav, 'gpu', { value: created, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu: created }, configurable: true, writable: true });
  gpu = created;
  return created;
}

/** GPUAdapterInfo as tfvlm reports it; SwiftShader counts as a fallback adapter whatever it says. */
export function describeAdapter(a: GpuAdapter): WebGpuAdapter {
  const { vendor, architecture, device, description } = a.info;
  const swiftShader = /swiftshader/i.test(`${vendor} ${architecture} ${device} ${description}`);
  return {
    vendor, architecture, device, description,
    isFallbackAdapter: Boolean(a.info.isFallbackAdapter ?? a.isFallbackAdapter) || swiftShader,
    swiftShader,
  };
}

function noAdapterReason(): string {
  const icd = process.env.VK_ICD_FILENAMES;
  return (
    `WebGPU (Dawn, through the webgpu package) found no adapter${icd ? ` with VK_ICD_FILENAMES=${icd}` : ''}. ` +
    'On a machine with a GPU, install its Vulkan driver (Linux: mesa-vulkan-drivers or the vendor driver; `vulkaninfo` lists it). ' +
    `To test on the CPU, point Vulkan at SwiftShader: VK_ICD_FILENAMES=${SWIFTSHADER_ICD} (Debian: apt-get install chromium)`
  );
}

/** The adapter Dawn would give the backend, or why there is none. Starts nothing in tfjs. */
export async function probeWebGpu(): Promise<WebGpuAdapter | string> {
  try {
    const a = await (await dawnGpu()).requestAdapter({ powerPreference: 'high-performance' });
    return a ? describeAdapter(a) : noAdapterReason();
  } catch (e) {
    return (e as Error).message.split('\n')[0] ?? String(e);
  }
}

/** Why the automatic choice passes over this adapter (a CPU fallback is far slower than wasm), or undefined. */
export function notARealGpu(a: WebGpuAdapter): string | undefined {
  if (!a.isFallbackAdapter) return undefined;
  return `the WebGPU adapter is a CPU fallback (${a.description || a.device || a.vendor}), slower than wasm; TFVLM_BACKEND=webgpu uses it anyway`;
}

/**
 * Linux: why there is surely no GPU (no DRM render node, no NVIDIA or WSL2 GPU device), or undefined.
 * The automatic choice then leaves Dawn unloaded: its Vulkan probe prints warnings on stderr.
 */
function noGpuDevice(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const names = (dir: string) => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  };
  const gpu = names('/dev/dri').some((n) => n.startsWith('renderD')) || names('/dev').some((n) => /^nvidia\d+$/.test(n) || n === 'dxg');
  return gpu ? undefined : 'no GPU device on this machine (/dev/dri/renderD*, /dev/nvidia*, /dev/dxg)';
}

/**
 * Makes webgpu the tfjs backend. `realGpuOnly` (the automatic choice) refuses a fallback adapter
 * such as SwiftShader: a CPU adapter is far slower than wasm. Returns undefined, or why not.
 */
export async function startWebGpu(options: { realGpuOnly: boolean }): Promise<string | undefined> {
  const noDevice = options.realGpuOnly ? noGpuDevice() : undefined;
  if (noDevice) return noDevice;
  const found = await probeWebGpu();
  if (typeof found === 'string') return found;
  const refused = options.realGpuOnly ? notARealGpu(found) : undefined;
  if (refused) return refused;
  await import('@tensorflow/tfjs-backend-webgpu');
  // The backend's factory (tfjs-backend-webgpu src/base.ts) requests the same high-performance adapter.
  if (!(await tf.setBackend('webgpu'))) return `tf.setBackend('webgpu') returned false`;
  const backend = tf.backend() as unknown as WebGpuBackendInternals;
  keepHostCopies(backend);
  refuseSyncReads(backend, 'which the webgpu backend cannot do in Node (tfjs needs an OffscreenCanvas for it)');
  adapter = found;
  return undefined;
}

