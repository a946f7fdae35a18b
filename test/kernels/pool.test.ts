// The kernel thread pool: results independent of how panels are split over threads (16-bit and
// quantized weights alike), several arenas at once, the one-thread fallback when workers cannot
// start, dispose, errors from a worker, and TFVLM_KERNEL_THREADS.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import {
  KernelArena, KernelPool, packedBytes, paddedColumns, quantizedBytes, type QuantBits, type QuantGroupSize, type WeightDType,
} from '../../src/kernels/index.ts';
import { linearReference } from '../../src/kernels/reference.ts';
import { assertDotClose } from '../helpers/compare.ts';
import { Bump, DTYPES, randomF32, randomQuantized, randomWeights } from './util.ts';

// Three threads (two workers) even on two cores: more chunks than cores, claimed in any order.
const many = new KernelPool({ threads: 3, spinMicros: 50 });
const one = new KernelPool({ threads: 1 });
after(() => {
  many.close();
  one.close();
});

/** Packs W, runs matvec and matmul, and returns the packed bytes and both outputs. */
function runAll(arena: KernelArena, dtype: WeightDType, M: number, N: number, K: number) {
  const mem = new Bump(arena);
  const src = mem.put(randomWeights(dtype, N * K, N + K));
  const w = mem.take(packedBytes(dtype, N, K));
  const x = mem.put(randomF32(M * K, M));
  const b = mem.put(randomF32(paddedColumns(N), 2));
  const y1 = mem.take(4 * paddedColumns(N));
  const y = mem.take(4 * M * N);
  arena.pack(dtype, src, w, N, K);
  arena.matvec(dtype, w, x, y1, N, K, b);
  arena.matmul(dtype, w, x, y, M, N, K, b);
  return {
    packed: arena.view(w, packedBytes(dtype, N, K)).slice(),
    matvec: arena.f32(y1, paddedColumns(N)).slice(),
    matmul: arena.f32(y, M * N).slice(),
  };
}

/** runAll for a quantized W: packQuantized, matvecQuantized and matmulQuantized. */
function runQuantized(arena: KernelArena, bits: QuantBits, G: QuantGroupSize, M: number, N: number, K: number) {
  const mem = new Bump(arena);
  const m = randomQuantized(bits, G, N, K, N + K);
  const codes = mem.put(m.codes), scales = mem.put(m.scales), biases = mem.put(m.biases);
  const bytes = quantizedBytes(bits, G, N, K);
  const w = mem.take(bytes);
  const x = mem.put(randomF32(M * K, M));
  const b = mem.put(randomF32(paddedColumns(N), 2));
  const y1 = mem.take(4 * paddedColumns(N));
  const y = mem.take(4 * M * N);
  arena.packQuantized(bits, G, codes, scales, biases, w, N, K);
  arena.matvecQuantized(bits, G, w, x, y1, N, K, b);
  arena.matmulQuantized(bits, G, w, x, y, M, N, K, b);
  return {
    packed: arena.view(w, bytes).slice(),
    matvec: arena.f32(y1, paddedColumns(N)).slice(),
    matmul: arena.f32(y, M * N).slice(),
  };
}

describe('KernelPool', () => {
  it('started the threads asked for', () => {
    assert.equal(many.threads, 3, many.reason);
    assert.equal(many.reason, undefined);
    assert.equal(one.threads, 1);
    assert.equal(one.reason, undefined);
  });

  it('gives bit-identical pack, matvec and matmul results on 3 threads and on 1', () => {
    const a = KernelArena.create(48 << 20, { pool: many });
    const b = KernelArena.create(48 << 20, { pool: one });
    try {
      // Big enough that the calls are split (≥ 64 KB of weights, 256K multiply-adds per thread), ragged in N.
      for (const dtype of DTYPES) {
        for (const [M, N, K] of [[1, 1001, 300], [37, 2003, 129], [5, 4099, 64]] as const) {
          const r3 = runAll(a, dtype, M, N, K);
          const r1 = runAll(b, dtype, M, N, K);
          assert.deepEqual(r3.packed, r1.packed, `${dtype} pack [${N}, ${K}]`);
          assert.deepEqual(r3.matvec, r1.matvec, `${dtype} matvec [${N}, ${K}]`);
          assert.deepEqual(r3.matmul, r1.matmul, `${dtype} matmul [${M}, ${N}, ${K}]`);
        }
      }
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('gives bit-identical quantized pack, matvec and matmul results on 3 threads and on 1', () => {
    const a = KernelArena.create(32 << 20, { pool: many });
    const b = KernelArena.create(32 << 20, { pool: one });
    try {
      // Split like the 16-bit calls above (≥ 32K weights, 256K multiply-adds per thread), ragged in N.
      for (const [bits, G] of [[4, 32], [8, 64], [4, 128]] as const) {
        for (const [M, N, K] of [[1, 1001, 256], [37, 2003, 128], [5, 4099, 384]] as const) {
          const r3 = runQuantized(a, bits, G, M, N, K);
          const r1 = runQuantized(b, bits, G, M, N, K);
          assert.deepEqual(r3.packed, r1.packed, `q${bits}/${G} pack [${N}, ${K}]`);
          assert.deepEqual(r3.matvec, r1.matvec, `q${bits}/${G} matvec [${N}, ${K}]`);
          assert.deepEqual(r3.matmul, r1.matmul, `q${bits}/${G} matmul [${M}, ${N}, ${K}]`);
        }
      }
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('keeps back-to-back calls apart: 600 calls alternating arenas, kernels and shapes, each result exact', () => {
    // A worker still claiming when the next call is published must run the new call's arguments.
    const arenas = [KernelArena.create(8 << 20, { pool: many }), KernelArena.create(8 << 20, { pool: many })];
    const single = KernelArena.create(8 << 20, { pool: one });
    try {
      const jobs = [
        { dtype: 'bf16' as const, M: 1, N: 1001, K: 300 },
        { dtype: 'f16' as const, M: 6, N: 515, K: 257 },
        { dtype: 'f32' as const, M: 1, N: 2000, K: 64 },
      ].map((job, i) => {
        const want = runAll(single, job.dtype, job.M, job.N, job.K);
        const arena = arenas[i % 2]!;
        const mem = new Bump(arena);
        mem.take((1 << 20) * (1 + i)); // different offsets per job
        const src = mem.put(randomWeights(job.dtype, job.N * job.K, job.N + job.K));
        const w = mem.take(packedBytes(job.dtype, job.N, job.K));
        const x = mem.put(randomF32(job.M * job.K, job.M));
        const b = mem.put(randomF32(paddedColumns(job.N), 2));
        const y = mem.take(4 * Math.max(job.M * job.N, paddedColumns(job.N)));
        arena.pack(job.dtype, src, w, job.N, job.K);
        return { ...job, arena, w, x, b, y, want };
      });
      for (let i = 0; i < 600; i++) {
        const j = jobs[i % jobs.length]!;
        const matvec = i % 2 === 0;
        const n = matvec ? paddedColumns(j.N) : j.M * j.N;
        j.arena.f32(j.y, n).fill(NaN);
        if (matvec) j.arena.matvec(j.dtype, j.w, j.x, j.y, j.N, j.K, j.b);
        else j.arena.matmul(j.dtype, j.w, j.x, j.y, j.M, j.N, j.K, j.b);
        assert.deepEqual(j.arena.f32(j.y, n), matvec ? j.want.matvec : j.want.matmul, `call ${i}: ${j.dtype} ${matvec ? 'matvec' : 'matmul'}`);
      }
    } finally {
      for (const a of [...arenas, single]) a.dispose();
    }
  });

  it('runs two arenas at once: interleaved calls each see their own memory', () => {
    const arenas = [KernelArena.create(8 << 20, { pool: many }), KernelArena.create(8 << 20, { pool: many })];
    try {
      const N = 777, K = 301, M = 9;
      const setups = arenas.map((arena, i) => {
        const mem = new Bump(arena);
        const dtype: WeightDType = i ? 'bf16' : 'f16';
        const raw = randomWeights(dtype, N * K, 40 + i);
        const xs = randomF32(M * K, 50 + i);
        const src = mem.put(raw);
        const w = mem.take(packedBytes(dtype, N, K));
        arena.pack(dtype, src, w, N, K);
        return { arena, dtype, raw, xs, w, x: mem.put(xs), y: mem.take(4 * M * N), ref: linearReference(dtype, raw, xs, M, N, K) };
      });
      for (let round = 0; round < 3; round++) {
        for (const s of setups) {
          s.arena.f32(s.y, M * N).fill(NaN);
          s.arena.matmul(s.dtype, s.w, s.x, s.y, M, N, K);
        }
        for (const s of setups) assertDotClose(s.arena.f32(s.y, M * N), s.ref.y, s.ref.magnitude, K, undefined, `${s.dtype} arena`);
      }
    } finally {
      for (const a of arenas) a.dispose();
    }
  });

  it('back-to-back calls with other arguments never mix (a worker between two claims sees a new call)', () => {
    // A worker can finish its last chunk of one call, be preempted, and claim a chunk of the next
    // call the caller has already published: it must run that call's function on that call's
    // arguments. Two weights and two outputs alternate over many short calls; a competing busy
    // thread on this process makes preemption between claims likely.
    const arena = KernelArena.create(4 << 20, { pool: many });
    const busy = new Worker('let x = 0; const end = Date.now() + 1500; while (Date.now() < end) x++;', { eval: true });
    try {
      const N = 1003, K = 128; // 250 KB of weights: split over the 3 threads
      const mem = new Bump(arena);
      const setups = (['bf16', 'f16'] as const).map((dtype, i) => {
        const raw = randomWeights(dtype, N * K, 60 + i);
        const xs = randomF32(K, 70 + i);
        const src = mem.put(raw);
        const w = mem.take(packedBytes(dtype, N, K));
        arena.pack(dtype, src, w, N, K);
        return { dtype, w, x: mem.put(xs), y: mem.take(4 * paddedColumns(N)), ref: linearReference(dtype, raw, xs, 1, N, K) };
      });
      for (let call = 0; call < 3000; call++) {
        const s = setups[call % 2]!;
        arena.f32(s.y, paddedColumns(N)).fill(NaN);
        arena.matvec(s.dtype, s.w, s.x, s.y, N, K);
        if (call % 2 === 1 || call === 2998) {
          for (const t of setups) assertDotClose(arena.f32(t.y, N), t.ref.y, t.ref.magnitude, K, undefined, `call ${call}: ${t.dtype}`);
        }
      }
    } finally {
      void busy.terminate();
      arena.dispose();
    }
  });

  it('wakes a sleeping caller when the workers finish their share, whatever share it ran itself', () => {
    // Chunks long enough (a 64-row matmul over 1.5 MB of weights) that the caller, done with its
    // own, stops spinning and sleeps; every wake-up must come from a worker, none from a timeout.
    const arena = KernelArena.create(16 << 20, { pool: many });
    try {
      const M = 64, N = 1024, K = 768;
      const mem = new Bump(arena);
      const src = mem.put(randomWeights('bf16', N * K, 80));
      const w = mem.take(packedBytes('bf16', N, K));
      arena.pack('bf16', src, w, N, K);
      const x = mem.put(randomF32(M * K, 81));
      const y = mem.take(4 * M * N);
      const before = many.timedOutWaits;
      for (let i = 0; i < 20; i++) arena.matmul('bf16', w, x, y, M, N, K);
      assert.equal(many.timedOutWaits - before, 0);
    } finally {
      arena.dispose();
    }
  });

  it('falls back to the calling thread, with a reason, when the workers cannot start', () => {
    const broken = new KernelPool({ threads: 2, workerUrl: new URL('./no-such-worker.mjs', import.meta.url), startTimeoutMs: 1000 });
    try {
      assert.equal(broken.threads, 1);
      assert.match(broken.reason ?? '', /kernel workers unavailable.*did not start/);
      const arena = KernelArena.create(4 << 20, { pool: broken });
      const single = KernelArena.create(4 << 20, { pool: one });
      assert.deepEqual(runAll(arena, 'f32', 3, 100, 40), runAll(single, 'f32', 3, 100, 40));
      arena.dispose();
      single.dispose();
    } finally {
      broken.close();
    }
  });

  it('dispose unregisters the arena: later calls throw, and a new arena takes its place', () => {
    const arena = KernelArena.create(1 << 20, { pool: many });
    arena.dispose();
    assert.equal(arena.disposed, true);
    assert.throws(() => arena.f32(0, 4), /disposed/);
    assert.throws(() => arena.matvec('f32', 0, 4096, 8192, 8, 8), /disposed/);
    arena.dispose(); // twice is fine
    const next = KernelArena.create(8 << 20, { pool: many });
    try {
      const single = KernelArena.create(8 << 20, { pool: one });
      assert.deepEqual(runAll(next, 'bf16', 4, 1000, 64), runAll(single, 'bf16', 4, 1000, 64));
      single.dispose();
    } finally {
      next.dispose();
    }
  });

  it('rethrows a trap from any thread and keeps working', () => {
    const memory = new WebAssembly.Memory({ initial: 16, maximum: 16, shared: true });
    const id = many.register(memory);
    try {
      // Weights far past the memory's end: every chunk traps, on the workers and here.
      assert.throws(
        () => many.call({ arena: id, fn: 'matvec_f32', args: [0x7fff0000, 0, 0, 64, 0, 0, 0], beginArg: 4, endArg: 5, begin: 0, end: 64, threads: 3 }),
        /out of bounds/,
      );
      many.call({ arena: id, fn: 'matvec_f32', args: [0, 0, 65536, 64, 0, 0, 0], beginArg: 4, endArg: 5, begin: 0, end: 64, threads: 3 });
      many.ping();
    } finally {
      many.unregister(id);
    }
  });

  it('refuses an arena above 4 GiB less the kernel scratch', () => {
    assert.throws(() => KernelArena.create(2 ** 32, { pool: one }), /at most \d+ bytes \(4 GiB/);
    assert.throws(() => KernelArena.create(KernelArena.maxBytes(one) + 1, { pool: one }), RangeError);
    assert.throws(() => KernelArena.create(-1, { pool: one }), RangeError);
  });
});

describe('TFVLM_KERNEL_THREADS', () => {
  it('sets the default pool size; 1 means no workers', () => {
    const index = fileURLToPath(new URL('../../src/kernels/index.ts', import.meta.url));
    const script = `import('${index}').then((k) => console.log(JSON.stringify(k.kernelThreads())))`;
    for (const [value, want] of [['1', { threads: 1 }], ['2', { threads: 2 }]] as const) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
        env: { ...process.env, TFVLM_KERNEL_THREADS: value }, encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), want);
    }
    const bad = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      env: { ...process.env, TFVLM_KERNEL_THREADS: 'two' }, encoding: 'utf8',
    });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /TFVLM_KERNEL_THREADS=two is not a positive integer/);
  });
});
