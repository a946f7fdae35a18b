// wasm backend throughput with 1 thread vs one per core: large matmuls (GFLOP/s), a matrix-vector
// product streaming a 64 MB matrix (GB/s), and conv2d/softmax/matmul outputs compared bit for bit
// across thread counts. Each thread count runs in its own child process (the pool is sized at init).
//   npx tsx bench/threads.ts [--json] [--threads 1,2] [--rounds 7]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const CHILD_ENV = 'TFVLM_THREADS_BENCH_OUT';

interface Row {
  name: string;
  /** GFLOP/s for matmuls, GB/s for the matrix-vector product, ms for the decode layers (best round). */
  value: number;
  unit: 'GFLOP/s' | 'GB/s' | 'ms';
  bestMs: number;
  /** Process CPU time ÷ wall time over the timed rounds: ~threads when every thread computes. */
  cpuPerWall: number;
}

export interface ChildResult {
  threads: number;
  threadsRequested: number | null;
  threadsFallback: string | null;
  initMs: number;
  rssMB: number;
  rows: Row[];
}

export interface ThreadsBench {
  runs: ChildResult[];
  /** Largest |difference| of each checked output against the first thread count's. */
  maxAbsDiff: Record<string, number>;
}

/** Names of the outputs each child writes for the numerics check. */
const CHECKED = ['matmul_1024x768x768', 'matvec_4096x4096', 'conv2d_3x3', 'softmax'] as const;

async function child(outDir: string, rounds: number): Promise<void> {
  const t0 = performance.now();
  const { initBackend, backendInfo, setComputeThreads, tf } = await import('../src/backend/index.ts');
  await initBackend();
  const initMs = performance.now() - t0;

  const best = (fn: () => void, warmup = 2): { ms: number; cpuPerWall: number } => {
    for (let i = 0; i < warmup; i++) fn();
    let ms = Infinity;
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    for (let i = 0; i < rounds; i++) {
      const t = performance.now();
      fn();
      ms = Math.min(ms, performance.now() - t);
    }
    const cpu = process.cpuUsage(cpu0);
    return { ms, cpuPerWall: (cpu.user + cpu.system) / 1000 / (performance.now() - wall0) };
  };
  const save = (name: string, t: import('@tensorflow/tfjs-core').Tensor) =>
    writeFileSync(path.join(outDir, `${name}.f32`), Buffer.from((t.dataSync() as Float32Array).buffer));

  const rows: Row[] = [];
  const matmul = (m: number, k: number, n: number) => {
    const a = tf.randomUniform([m, k], -1, 1, 'float32', 1);
    const b = tf.randomUniform([k, n], -1, 1, 'float32', 2);
    const name = `matmul_${m}x${k}x${n}`;
    const { ms, cpuPerWall } = best(() => tf.matMul(a, b).dispose());
    rows.push({ name, value: (2 * m * k * n) / ms / 1e6, unit: 'GFLOP/s', bestMs: ms, cpuPerWall });
    if ((CHECKED as readonly string[]).includes(name)) tf.tidy(() => save(name, tf.matMul(a, b)));
    tf.dispose([a, b]);
  };
  matmul(1024, 1024, 1024);
  matmul(1024, 768, 768);

  // 4096 × 4096 f32 = 64 MB, far larger than any cache: the product streams it from memory.
  const rowsK = 4096;
  const colsN = 4096;
  const w = tf.randomUniform([rowsK, colsN], -1, 1, 'float32', 3);
  const x = tf.randomUniform([1, rowsK], -1, 1, 'float32', 4);
  const mv = best(() => tf.matMul(x, w).dispose(), 3);
  const bytes = rowsK * colsN * 4;
  rows.push({ name: 'matvec_4096x4096', value: bytes / mv.ms / 1e6, unit: 'GB/s', bestMs: mv.ms, cpuPerWall: mv.cpuPerWall });
  tf.tidy(() => save('matvec_4096x4096', tf.matMul(x, w)));
  tf.dispose([w, x]);

  // One decoder layer of a SmolVLM-256M-size text model at one token (hidden 576, MLP 1536):
  // many small ops, where waking the other threads can cost more than it saves.
  const hidden = 576;
  const inter = 1536;
  const lw = {
    qkv: tf.randomUniform([hidden, 3 * hidden], -0.05, 0.05, 'float32', 8),
    o: tf.randomUniform([hidden, hidden], -0.05, 0.05, 'float32', 9),
    gateUp: tf.randomUniform([hidden, 2 * inter], -0.05, 0.05, 'float32', 10),
    down: tf.randomUniform([inter, hidden], -0.05, 0.05, 'float32', 11),
  };
  const h0 = tf.randomUniform([1, hidden], -1, 1, 'float32', 12);
  type T = import('@tensorflow/tfjs-core').Tensor;
  const rms = (t: T) => tf.mul(t, tf.rsqrt(tf.add(tf.mean(tf.square(t), -1, true), 1e-5)));
  const layer = (h: T) =>
    tf.tidy(() => {
      const qkv = tf.matMul(rms(h), lw.qkv);
      const a = tf.add(h, tf.matMul(tf.slice(qkv, [0, 2 * hidden], [1, hidden]), lw.o));
      const [g, u] = tf.split(tf.matMul(rms(a), lw.gateUp), 2, -1) as [T, T]; // two halves
      return tf.add(a, tf.matMul(tf.mul(tf.mul(g, tf.sigmoid(g)), u), lw.down));
    });
  const layers = 30;
  const lmHead = tf.randomUniform([hidden, 49152], -0.05, 0.05, 'float32', 13);
  const decodeRows = (suffix: string) => {
    const dec = best(() => {
      let h = tf.clone(h0);
      for (let i = 0; i < layers; i++) {
        const next = layer(h);
        h.dispose();
        h = next;
      }
      h.dataSync();
      h.dispose();
    });
    rows.push({ name: `decode_${layers}_layers_576${suffix}`, value: dec.ms, unit: 'ms', bestMs: dec.ms, cpuPerWall: dec.cpuPerWall });
    // The vocabulary projection of one token: a 576 × 49152 f32 matrix (113 MB) streamed once.
    const head = best(() => tf.matMul(h0, lmHead).dispose());
    rows.push({
      name: `lm_head_576x49152${suffix}`,
      value: (hidden * 49152 * 4) / head.ms / 1e6,
      unit: 'GB/s',
      bestMs: head.ms,
      cpuPerWall: head.cpuPerWall,
    });
  };
  decodeRows('');
  const started = (await backendInfo()).threadsStarted ?? 1;
  if (started > 1 && setComputeThreads(1) === 1) {
    decodeRows(' [switched to 1 thread]');
    setComputeThreads(started);
  }
  lmHead.dispose();
  tf.dispose([lw.qkv, lw.o, lw.gateUp, lw.down, h0]);

  tf.tidy(() => {
    const img = tf.randomUniform([1, 64, 64, 32], -1, 1, 'float32', 5) as import('@tensorflow/tfjs-core').Tensor4D;
    const filter = tf.randomUniform([3, 3, 32, 64], -1, 1, 'float32', 6) as import('@tensorflow/tfjs-core').Tensor4D;
    save('conv2d_3x3', tf.conv2d(img, filter, 1, 'same'));
    save('softmax', tf.softmax(tf.randomUniform([64, 1000], -8, 8, 'float32', 7)));
  });

  const info = await backendInfo();
  const result: ChildResult = {
    threads: info.threads,
    threadsRequested: info.threadsRequested,
    threadsFallback: info.threadsFallback,
    initMs,
    rssMB: info.rssMB,
    rows,
  };
  writeFileSync(path.join(outDir, 'result.json'), JSON.stringify(result));
}

/** Runs the bench once per thread count, each in a fresh process, and compares their outputs. */
export function runThreadsBench(threadCounts: number[], rounds = 7): ThreadsBench {
  const self = fileURLToPath(import.meta.url);
  const runs: ChildResult[] = [];
  const outputs: Record<string, Float32Array>[] = [];
  for (const threads of threadCounts) {
    const outDir = mkdtempSync(path.join(os.tmpdir(), 'tfvlm-threads-'));
    try {
      const r = spawnSync(process.execPath, ['--import', 'tsx', self], {
        env: {
          ...process.env,
          TFVLM_THREADS: String(threads),
          TFVLM_THREADS_BENCH_ROUNDS: String(rounds),
          [CHILD_ENV]: outDir,
        },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      if (r.status !== 0) throw new Error(`bench child with TFVLM_THREADS=${threads} exited with ${r.status}`);
      runs.push(JSON.parse(readFileSync(path.join(outDir, 'result.json'), 'utf8')) as ChildResult);
      const out: Record<string, Float32Array> = {};
      for (const name of CHECKED) {
        const buf = readFileSync(path.join(outDir, `${name}.f32`));
        out[name] = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
      }
      outputs.push(out);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  }
  const maxAbsDiff: Record<string, number> = {};
  const [first, ...others] = outputs;
  for (const name of CHECKED) {
    let d = 0;
    for (const out of others) {
      const a = first?.[name];
      const b = out[name];
      if (!a || !b || a.length !== b.length) d = Infinity;
      else for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
    }
    maxAbsDiff[name] = d;
  }
  return { runs, maxAbsDiff };
}

function printTable(bench: ThreadsBench): void {
  const head = ['', ...bench.runs.map((r) => `${r.threads} thread${r.threads > 1 ? 's' : ''}`)];
  const lines: string[][] = [head];
  const names = [...new Set(bench.runs.flatMap((r) => r.rows.map((x) => x.name)))];
  for (const name of names) {
    const unit = bench.runs.flatMap((r) => r.rows).find((x) => x.name === name)!.unit;
    lines.push([
      `${name} (${unit})`,
      ...bench.runs.map((r) => {
        const x = r.rows.find((y) => y.name === name);
        return x ? `${x.value.toFixed(1)} (${x.bestMs.toFixed(1)} ms, cpu/wall ${x.cpuPerWall.toFixed(2)})` : '';
      }),
    ]);
  }
  lines.push(['backend init (ms)', ...bench.runs.map((r) => r.initMs.toFixed(0))]);
  lines.push(['RSS after bench (MB)', ...bench.runs.map((r) => r.rssMB.toFixed(0))]);
  // Every line has one cell per column of head.
  const widths = head.map((_, c) => Math.max(...lines.map((l) => l[c]!.length)));
  for (const l of lines) console.log(l.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
  for (const r of bench.runs) if (r.threadsFallback) console.log(`note (${r.threadsRequested} requested): ${r.threadsFallback}`);
  console.log('max |diff| vs first run:', JSON.stringify(bench.maxAbsDiff));
}

const childOut = process.env[CHILD_ENV];
if (childOut) {
  await child(childOut, Number(process.env.TFVLM_THREADS_BENCH_ROUNDS ?? 7));
} else if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { json: { type: 'boolean' }, threads: { type: 'string' }, rounds: { type: 'string' } },
  });
  const counts = values.threads
    ? values.threads.split(',').map(Number)
    : [...new Set([1, Math.min(os.availableParallelism(), 8)])];
  const bench = runThreadsBench(counts, Number(values.rounds ?? 7));
  if (values.json) console.log(JSON.stringify(bench));
  else printTable(bench);
}
