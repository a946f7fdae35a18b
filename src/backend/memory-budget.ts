// Will a model fit? Before any weight is allocated, the bytes it will hold (weights in their resident
// precision, a KV cache for a nominal context, working memory) are compared with what the machine
// can give: /proc/meminfo MemAvailable (Linux, page cache counted as reclaimable), capped by a cgroup
// v2 memory.max; os.freemem() elsewhere. TFVLM_MEMORY_AVAILABLE overrides the figure (bytes, or with
// a unit: 12GB, 800MiB), for containers that misreport it and for tests.
import fs from 'node:fs';
import os from 'node:os';
import { TfvlmError } from '../errors.ts';

const UNITS: Record<string, number> = {
  '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** "12GB", "800MiB", "123456" → bytes. */
export function parseByteSize(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new TfvlmError(`${what}: '${text}' is not a size (examples: 16GB, 800MiB, 1073741824)`);
  return Math.floor(Number(m[1]) * unit);
}

function readNumberFile(file: string): number | undefined {
  try {
    const text = fs.readFileSync(file, 'utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

export interface AvailableMemory {
  bytes: number;
  /** Where the figure comes from, for messages. */
  source: string;
}

/** Memory this process can still take, and where the figure comes from. */
export function availableMemory(env: NodeJS.ProcessEnv = process.env): AvailableMemory {
  const override = env.TFVLM_MEMORY_AVAILABLE;
  if (override !== undefined && override !== '') {
    return { bytes: parseByteSize(override, 'TFVLM_MEMORY_AVAILABLE'), source: 'TFVLM_MEMORY_AVAILABLE' };
  }
  let bytes = os.freemem();
  let source = 'free memory';
  try {
    const kb = /^MemAvailable:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (kb) {
      bytes = Number(kb[1]) * 1024;
      source = 'MemAvailable';
    }
  } catch {
    // not Linux: os.freemem()
  }
  const limit = readNumberFile('/sys/fs/cgroup/memory.max');
  const used = readNumberFile('/sys/fs/cgroup/memory.current');
  if (limit !== undefined && used !== undefined && limit - used < bytes) {
    bytes = Math.max(0, limit - used);
    source = 'cgroup memory.max − memory.current';
  }
  return { bytes, source };
}

export interface MemoryNeed {
  /** What is being loaded, e.g. the model folder. */
  what: string;
  /** Parts of the need, in bytes: e.g. weights, KV cache, working memory. */
  parts: { name: string; bytes: number }[];
}

const gb = (n: number) => `${(n / 1e9).toFixed(2)} GB`;

/** Throws a TfvlmError naming every part when the need exceeds what is available. */
export function checkFits(need: MemoryNeed, available: AvailableMemory = availableMemory()): void {
  const total = need.parts.reduce((a, p) => a + p.bytes, 0);
  if (total <= available.bytes) return;
  const parts = need.parts.map((p) => `${p.name} ${gb(p.bytes)}`).join(' + ');
  throw new TfvlmError(
    `${need.what} does not fit in memory: it needs ${parts} = ${gb(total)}, but ${gb(available.bytes)} is available ` +
    `(${available.source}). Free memory, use a smaller or quantized checkpoint, or set TFVLM_MEMORY_AVAILABLE if the figure is wrong.`,
  );
}
