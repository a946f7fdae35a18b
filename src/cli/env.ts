import os from 'node:os';
import { backendInfo } from '../backend/index.ts';
import type { Command } from './command.ts';

export const envCommand: Command = {
  name: 'env',
  summary: 'print the tfjs backend, its version, SIMD/threads and memory',
  usage: `Usage: tfvlm env [--json]

Prints the backend tfvlm chose (tfjs-node-gpu → tfjs-node → wasm → cpu; TFVLM_BACKEND overrides),
the tfjs version, SIMD and thread count of the wasm backend, and memory.`,
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
      process.stdout.write(JSON.stringify({ ...info, ...machine }) + '\n');
      return 0;
    }
    const rows: [string, string][] = [
      ['backend', info.backend],
      ['tfjs', info.tfjsVersion],
      ['simd', info.simd === null ? 'n/a' : String(info.simd)],
      ['threads', `${info.threads}${info.threadsFallback ? ` (${info.threadsFallback})` : ''}`],
      ['node', machine.node],
      ['platform', machine.platform],
      ['cpus', String(machine.cpus)],
      ['memory', `${machine.totalMemoryGB} GB total, RSS ${info.rssMB.toFixed(0)} MB, heap ${info.heapUsedMB.toFixed(0)} MB`],
      ['tensors', `${info.numTensors} (${(info.numBytes / 2 ** 20).toFixed(1)} MB)`],
    ];
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(10)}${v}\n`);
    return 0;
  },
};
