import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { initBackend, backendInfo, setComputeThreads, withComputeThreads, tf } from '../../src/backend/index.ts';
import { requestedThreads, MAX_WASM_THREADS } from '../../src/backend/wasm.ts';
import { TfvlmError } from '../../src/errors.ts';
import { startWasmWithFastPaths } from '../helpers/wasm-backend.ts';

const tfjsNodeInstalled = (() => {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
})();

const CHILD = fileURLToPath(new URL('./start-backend.ts', import.meta.url));

interface ChildReport {
  ok: boolean;
  backend?: string;
  threads?: number;
  threadsRequested?: number | null;
  threadsFallback?: string | null;
  products?: string;
  switchedTo1?: number;
  infoThreadsAfterSwitch?: number;
  productsAfterSwitchTo1?: string;
  switchedBack?: number;
  productsAfterSwitchBack?: string;
  name?: string;
  message?: string;
}

interface ChildRun {
  report: ChildReport;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Starts the backend in a fresh Node with `env` added; it must exit by itself within the timeout. */
function startInChild(env: Record<string, string>): Promise<ChildRun> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const k of ['TFVLM_BACKEND', 'TFVLM_THREADS', 'TFVLM_THREADS_TIMEOUT_MS']) {
    if (!(k in env)) delete childEnv[k];
  }
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', CHILD],
      { env: childEnv, timeout: 90_000, killSignal: 'SIGKILL' },
      (_err, stdout, stderr) => {
        const last = stdout.trim().split('\n').at(-1) ?? '';
        let report: ChildReport;
        try {
          report = JSON.parse(last) as ChildReport;
        } catch {
          report = { ok: false, message: `no report on stdout: ${stdout}` };
        }
        resolve({ report, stderr, code: child.exitCode, signal: child.signalCode });
      },
    );
  });
}

function assertExitedCleanly(run: ChildRun, what: string): void {
  assert.equal(run.signal, null, `${what}: killed by ${run.signal} (hung, e.g. on a worker thread)\n${run.stderr}`);
  assert.equal(run.code, 0, `${what}: exit code ${run.code}\n${run.stderr}`);
}

// These run before any backend has started in this process (a failed start is not remembered).
describe('backend refusals', () => {
  it('explains TFVLM_BACKEND=nonsense with a TfvlmError', async () => {
    await assert.rejects(
      initBackend('nonsense'),
      (e: Error) => e instanceof TfvlmError && /TFVLM_BACKEND=nonsense is not a backend; use one of .*wasm/.test(e.message),
    );
  });

  it('explains a missing TFVLM_BACKEND=tensorflow with a TfvlmError', { skip: tfjsNodeInstalled }, async () => {
    await assert.rejects(
      initBackend('tensorflow'),
      (e: Error) =>
        e instanceof TfvlmError && /backend 'tensorflow' \(@tensorflow\/tfjs-node\) is not available/.test(e.message),
    );
  });

  it('explains a malformed TFVLM_THREADS with a TfvlmError', async () => {
    const saved = process.env.TFVLM_THREADS;
    process.env.TFVLM_THREADS = 'many';
    try {
      await assert.rejects(
        initBackend('wasm'),
        (e: Error) => e instanceof TfvlmError && /TFVLM_THREADS=many is not a positive integer/.test(e.message),
      );
    } finally {
      if (saved === undefined) delete process.env.TFVLM_THREADS;
      else process.env.TFVLM_THREADS = saved;
    }
  });
});

describe('backend', () => {
  before(async () => {
    await startWasmWithFastPaths();
  });

  it('initialises to wasm with SIMD and reports at least one thread', async () => {
    const info = await backendInfo();
    assert.equal(info.backend, 'wasm');
    assert.equal(info.simd, true);
    assert.ok(Number.isInteger(info.threads) && info.threads >= 1, `threads = ${info.threads}`);
    assert.ok(info.threadsRequested !== null && info.threads <= info.threadsRequested);
    if (info.threads < info.threadsRequested) assert.ok(info.threadsFallback, 'fewer threads without a reason');
  });

  it('computes on the threads it reports', () => {
    const y = tf.tidy(() => tf.matMul(tf.ones([64, 32]), tf.ones([32, 48])).dataSync());
    assert.equal(y.length, 64 * 48);
    assert.ok(y.every((v) => v === 32));
  });

  it('runs a function on one thread and restores the thread count after', async () => {
    const { threads, threadsStarted } = await backendInfo();
    const product = () => tf.tidy(() => tf.matMul(tf.randomUniform([96, 200], -1, 1, 'float32', 1), tf.randomUniform([200, 130], -1, 1, 'float32', 2)).dataSync());
    const all = product();
    const inside = withComputeThreads(1, () => ({ threads: setComputeThreads(1), y: product() }));
    assert.equal(inside.threads, 1);
    assert.deepEqual(inside.y, all);
    assert.equal((await backendInfo()).threads, threads);
    assert.throws(() => withComputeThreads(1, () => { throw new TfvlmError('inner'); }), /inner/);
    assert.equal((await backendInfo()).threads, threads);
    assert.equal(setComputeThreads(64), threadsStarted);
  });

  it('reads TFVLM_THREADS, one thread per core by default', () => {
    assert.equal(requestedThreads('3'), 3);
    assert.ok(requestedThreads(undefined) >= 1);
    assert.ok(MAX_WASM_THREADS >= 2);
    for (const bad of ['0', '-2', 'two', '1.5']) {
      assert.throws(() => requestedThreads(bad), (e: Error) => e instanceof TfvlmError && e.message.includes(`TFVLM_THREADS=${bad}`));
    }
  });
});

describe('backend in a fresh process', () => {
  let runs: Record<'one' | 'two' | 'fallback', ChildRun>;

  before(async () => {
    // TFVLM_BACKEND=wasm: these test the wasm backend's threads, whichever backend would win.
    const [one, two, fallback] = await Promise.all([
      startInChild({ TFVLM_BACKEND: 'wasm', TFVLM_THREADS: '1' }),
      startInChild({ TFVLM_BACKEND: 'wasm', TFVLM_THREADS: '2' }),
      startInChild({ TFVLM_BACKEND: 'wasm', TFVLM_THREADS: '2', TFVLM_THREADS_TIMEOUT_MS: '1' }),
    ]);
    runs = { one, two, fallback };
  });

  it('runs the threaded SIMD build with TFVLM_THREADS=2', () => {
    const { report } = runs.two;
    assert.ok(report.ok, report.message);
    assert.equal(report.backend, 'wasm');
    assert.equal(report.threadsFallback, null);
    assert.equal(report.threads, 2);
    assert.equal(report.threadsRequested, 2);
  });

  it('switches a 2-thread backend to one thread and back, with identical results', () => {
    const { report } = runs.two;
    assert.equal(report.switchedTo1, 1);
    assert.equal(report.infoThreadsAfterSwitch, 1, 'backendInfo().threads follows setComputeThreads');
    assert.equal(report.switchedBack, 2);
    assert.equal(report.productsAfterSwitchTo1, runs.one.report.products);
    assert.equal(report.productsAfterSwitchBack, runs.one.report.products);
  });

  it('runs single-threaded with TFVLM_THREADS=1', () => {
    const { report } = runs.one;
    assert.ok(report.ok, report.message);
    assert.equal(report.threads, 1);
    assert.equal(report.threadsFallback, null);
    assert.equal(report.switchedBack, 1, 'a one-thread backend has nothing to switch to');
  });

  it('gives matmul results identical bit for bit between 1 and 2 threads', () => {
    assert.ok(runs.one.report.products && runs.two.report.products);
    assert.equal(runs.two.report.products, runs.one.report.products);
  });

  it('falls back to one thread, with the reason, when the threaded build does not start', () => {
    const { report, stderr } = runs.fallback;
    assert.ok(report.ok, report.message);
    assert.equal(report.threads, 1);
    assert.equal(report.threadsRequested, 2);
    assert.match(report.threadsFallback ?? '', /did not start within 1 ms/);
    assert.match(stderr, /running single-threaded/);
    assert.equal(report.products, runs.one.report.products);
  });

  it('exits by itself after starting (no worker thread keeps Node alive)', () => {
    for (const name of ['one', 'two', 'fallback'] as const) assertExitedCleanly(runs[name], name);
  });
});
