import os from 'node:os';
import { jsonLine } from './json-output.ts';
import { backendInfo, type WebGpuAdapter } from '../backend/index.ts';
import type { Command } from './command.ts';

export const envCommand: Command = {
  name: 'env',
  summary: 'print the tfjs backend, its version, SIMD/threads and memory',
  usage: `Usage: tfvlm env [--json]

Prints the backend tfvlm chose (tfjs-node-gpu → tfjs-node → webgpu on a real GPU → wasm → cpu;
TFVLM_BACKEND overrides), the tfjs version, SIMD and thread count of the wasm backend, whether its
fast paths are in (only on the tfjs release they were verified on; otherwise why not), the WebGPU
adapter on webgpu, and memory.`,
  options: { json: { type: 'boolean' } },
  async run(args) {
    const info = await backendInfo();
    const machine = {
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      cpus: os.availableParallelism(),
      totalMemoryGB: +(os.totalmem() / 2 ** 30).toFixed(1),
    };
    if (args.values.json) {
      process.stdout.write(jsonLine({ ...info, ...machine }));
      return 0;
    }
    const verifiedOn = Object.entries(info.fastPathsVerifiedOn).map(([pkg, v]) => `${pkg} ${v}`).join(', ');
    const rows: [string, string][] = [
      ['backend', info.backend],
      ['tfjs', `${info.tfjsVersion}${info.wasmVersion ? ` (@tensorflow/tfjs-backend-wasm ${info.wasmVersion})` : ''}`],
      ['simd', info.simd === null ? 'n/a' : String(info.simd)],
      ['threads', `${info.threads}${info.threadsFallback ? ` (${info.threadsFallback})` : ''}`],
      ...(info.webgpuAdapter ? [['webgpu adapter', adapterLine(info.webgpuAdapter)] as [string, string]] : []),
      ['fast paths', info.fastPaths === null ? 'n/a (wasm only)'
        : info.fastPaths ? `on (verified on ${verifiedOn})` : `off (${info.fastPathsOff})`],
      ['node', machine.node],
      ['platform', machine.platform],
      ['cpus', String(machine.cpus)],
      ['memory', `${machine.totalMemoryGB} GB total, RSS ${info.rssMB.toFixed(0)} MB, heap ${info.heapUsedMB.toFixed(0)} MB`],
      ['tensors', `${info.numTensors} (${(info.numBytes / 2 ** 20).toFixed(1)} MB)`],
    ];
    const width = Math.max(...rows.map(([k]) => k.length)) + 2;
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}${v}\n`);
    return 0;
  },
};

/** "google swiftshader swiftshader-device-subzero- (SwiftShader driver 5.0.0; CPU fallback adapter)": vendor architecture device (notes). */
function adapterLine(a: WebGpuAdapter): string {
  const name = [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'unnamed adapter';
  const notes = [a.description, a.isFallbackAdapter ? 'CPU fallback adapter' : ''].filter(Boolean);
  return notes.length ? `${name} (${notes.join('; ')})` : name;
}
