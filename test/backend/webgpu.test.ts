// The webgpu backend (Dawn through the `webgpu` package) on SwiftShader, a CPU Vulkan driver: the
// tiny fixture models against their transformers goldens with the float32 tolerance (logits, every
// golden intermediate, greedy ids and each step's logits), `tfvlm env` naming the adapter, the
// error without an adapter, the automatic choice passing over a CPU adapter, and the wasm-only
// paths left off. A tfjs backend is process-wide, so each check runs in a child process.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeAdapter, notARealGpu, SWIFTSHADER_ICD } from '../../src/backend/webgpu.ts';
import type { ParityReport } from './webgpu-parity-child.ts';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const PARITY = fileURLToPath(new URL('./webgpu-parity-child.ts', import.meta.url));
const PATHS = fileURLToPath(new URL('./webgpu-paths-child.ts', import.meta.url));
const NO_SWIFTSHADER = fs.existsSync(SWIFTSHADER_ICD)
  ? undefined
  : `no SwiftShader Vulkan driver at ${SWIFTSHADER_ICD} (Debian: apt-get install chromium)`;

/** Every tiny fixture model; `:forward` after a name would skip its generation. */
const FIXTURES = ['tiny-smolvlm', 'tiny-smolvlm2', 'tiny-smolvlm-patch', 'tiny-llava', 'tiny-clip', 'tiny-siglip'];

interface Run {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A fresh Node on `args` with `env` added (and TFVLM_BACKEND, VK_ICD_FILENAMES only as given); it must exit by itself. */
function run(args: string[], env: Record<string, string>, timeoutMs: number): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const k of ['TFVLM_BACKEND', 'VK_ICD_FILENAMES', 'TFVLM_WEIGHTS']) if (!(k in env)) delete childEnv[k];
  return new Promise((resolve) => {
    const child = execFile(process.execPath, args, { env: childEnv, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 2 ** 20 },
      (_err, stdout, stderr) => resolve({ stdout, stderr, code: child.exitCode, signal: child.signalCode }));
  });
}

const ON_SWIFTSHADER = { TFVLM_BACKEND: 'webgpu', VK_ICD_FILENAMES: SWIFTSHADER_ICD };

function assertExited(r: Run, what: string): void {
  assert.equal(r.signal, null, `${what}: killed by ${r.signal} (hung?)\n${r.stderr}`);
  assert.equal(r.code, 0, `${what}: exit code ${r.code}\n${r.stderr}`);
}

describe('webgpu adapters (no GPU needed)', () => {
  const info = (i: Partial<{ vendor: string; architecture: string; device: string; description: string; isFallbackAdapter: boolean }>) =>
    describeAdapter({ info: { vendor: '', architecture: '', device: '', description: '', ...i } });

  it('counts SwiftShader as a CPU fallback, which the automatic choice passes over', () => {
    const swiftShader = info({ vendor: 'google', architecture: 'swiftshader', device: 'swiftshader-device-subzero-', description: 'SwiftShader driver 5.0.0' });
    assert.equal(swiftShader.swiftShader, true);
    assert.equal(swiftShader.isFallbackAdapter, true);
    assert.match(notARealGpu(swiftShader) ?? '', /CPU fallback \(SwiftShader driver 5\.0\.0\).*TFVLM_BACKEND=webgpu uses it anyway/);
    assert.equal(info({ vendor: 'mesa', description: 'llvmpipe', isFallbackAdapter: true }).isFallbackAdapter, true);
  });

  it('takes a real GPU adapter', () => {
    const gpu = info({ vendor: 'nvidia', architecture: 'ampere', description: 'NVIDIA GeForce RTX 3080', isFallbackAdapter: false });
    assert.deepEqual([gpu.isFallbackAdapter, gpu.swiftShader, notARealGpu(gpu)], [false, false, undefined]);
  });
});

describe('webgpu backend on SwiftShader', () => {
  let parity: Run;
  let reports: Map<string, ParityReport>;
  let runs: Record<'envText' | 'envJson' | 'noAdapter' | 'automatic' | 'paths' | 'serve', Run>;

  before(async () => {
    if (NO_SWIFTSHADER) return;
    const [p, envText, envJson, noAdapter, automatic, paths, serve] = await Promise.all([
      run(['--import', 'tsx', PARITY, ...FIXTURES], ON_SWIFTSHADER, 600_000),
      run([BIN, 'env'], ON_SWIFTSHADER, 60_000),
      run([BIN, 'env', '--json'], ON_SWIFTSHADER, 60_000),
      run([BIN, 'env'], { TFVLM_BACKEND: 'webgpu', VK_ICD_FILENAMES: '/nonexistent/vk_icd.json' }, 60_000),
      run([BIN, 'env', '--json'], { VK_ICD_FILENAMES: SWIFTSHADER_ICD }, 60_000),
      run(['--import', 'tsx', PATHS], ON_SWIFTSHADER, 60_000),
      run([BIN, 'serve', '--port', '0'], ON_SWIFTSHADER, 60_000),
    ]);
    parity = p;
    runs = { envText, envJson, noAdapter, automatic, paths, serve };
    reports = new Map(p.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => {
      const r = JSON.parse(l) as ParityReport;
      return [r.fixture, r];
    }));
  });

  for (const arg of FIXTURES) {
    const [folder = '', mode] = arg.split(':');
    it(`${folder}: the goldens within TOLERANCE.float32${mode === 'forward' ? ' (forward)' : ', greedy ids, no tensors left'}`, (t) => {
      if (NO_SWIFTSHADER) return t.skip(NO_SWIFTSHADER);
      assertExited(parity, 'the parity child');
      const r = reports.get(folder);
      assert.ok(r, `no report for ${folder}:\n${parity.stderr.slice(-4000)}`);
      assert.ok(r.ok, r.message);
      assert.equal(r.backend, 'webgpu');
      const logits = r.compared.filter((c) => /logits/.test(c.what));
      assert.ok(logits.length > 0, 'no logits compared');
      const worst = (cs: typeof r.compared) => cs.reduce((a, c) => (c.maxAbs > a.maxAbs ? c : a));
      console.log(`webgpu parity ${folder}: ${r.compared.length} tensors, max|Δ| logits ${worst(logits).maxAbs.toExponential(2)} ` +
        `(bound ${worst(logits).bound.toExponential(2)}), all ${worst(r.compared).maxAbs.toExponential(2)} (${worst(r.compared).what}); ` +
        `${r.generated.length} generations; ${(r.ms / 1000).toFixed(1)} s`);
      for (const c of r.compared) assert.ok(c.maxAbs <= c.bound, `${folder} ${c.what}: max |Δ| ${c.maxAbs.toExponential(3)} exceeds ${c.bound.toExponential(3)}`);
      if (mode === 'forward' || folder === 'tiny-clip' || folder === 'tiny-siglip') return;
      assert.ok(r.generated.length >= 2, 'no generations');
      for (const g of r.generated) assert.deepEqual(g.got, g.expected, `${folder} ${g.case}: greedy ids`);
      assert.equal(r.tensorsAfter, r.tensorsBefore, 'tf.memory().numTensors after a generate');
    });
  }

  it('tfvlm env names the adapter (text and --json)', (t) => {
    if (NO_SWIFTSHADER) return t.skip(NO_SWIFTSHADER);
    assertExited(runs.envText, 'tfvlm env');
    assert.match(runs.envText.stdout, /^backend\s+webgpu$/m);
    assert.match(runs.envText.stdout, /^webgpu adapter\s+google swiftshader .*SwiftShader.*CPU fallback adapter/m);
    assertExited(runs.envJson, 'tfvlm env --json');
    const info = JSON.parse(runs.envJson.stdout);
    assert.equal(info.backend, 'webgpu');
    assert.equal(info.webgpu_adapter.vendor, 'google');
    assert.equal(info.webgpu_adapter.architecture, 'swiftshader');
    assert.equal(info.webgpu_adapter.is_fallback_adapter, true);
    assert.equal(info.webgpu_adapter.swift_shader, true);
  });

  it('without an adapter, TFVLM_BACKEND=webgpu says how to get one', (t) => {
    if (NO_SWIFTSHADER) return t.skip(NO_SWIFTSHADER);
    const r = runs.noAdapter;
    assert.equal(r.signal, null, r.stderr);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^tfvlm env: backend 'webgpu' \(@tensorflow\/tfjs-backend-webgpu\) is not available: .*found no adapter with VK_ICD_FILENAMES=\/nonexistent\/vk_icd\.json/m);
    assert.ok(r.stderr.includes(`VK_ICD_FILENAMES=${SWIFTSHADER_ICD}`), r.stderr);
    assert.doesNotMatch(r.stderr, /^\s+at .*\.(ts|js|mjs):\d+/m, 'no JavaScript stack trace (Dawn prints its own warnings)');
  });

  it('a command that reads results synchronously refuses TFVLM_BACKEND=webgpu before loading, naming itself', (t) => {
    if (NO_SWIFTSHADER) return t.skip(NO_SWIFTSHADER);
    const r = runs.serve;
    assert.equal(r.signal, null, r.stderr);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^tfvlm serve: continuous batching reads results synchronously, which the webgpu backend cannot do in Node; run it with TFVLM_BACKEND=wasm$/m);
    assert.doesNotMatch(r.stderr, /listening/);
  });

  it('the automatic choice does not take SwiftShader', (t) => {
    if (NO_SWIFTSHADER) return t.skip(NO_SWIFTSHADER);
    assertExited(runs.automatic, 'tfvlm env');
    assert.notEqual(JSON.parse(runs.automatic.stdout).backend, 'webgpu');
  });

  it('leaves every wasm-only path off, loads weights as float32 and names a synchronous GPU read', (t) => {
    if (NO_SWIFTSHADER) return t.skip(NO_SWIFTSHADER);
    assertExited(runs.paths, 'the paths child');
    const p = JSON.parse(runs.paths.stdout.trim().split('\n').at(-1) ?? '');
    assert.deepEqual(
      [p.backend, p.readsSync, p.fusedKernels, p.packedLinearKernel, p.heapKernels, p.inPlaceWrites, p.storedLoadsAs],
      ['webgpu', false, false, false, false, false, 'float32'],
    );
    assert.equal(p.hostSumAfterUse, (4095 * 4096) / 2, 'a tensor made from host values reads synchronously after an op used it');
    assert.equal(p.gpuSumAsync, 4095 * 4096);
    assert.equal(p.gpuRead.tfvlmError, true);
    assert.match(p.gpuRead.error, /reads a GPU result synchronously .*\(TFVLM_BACKEND=wasm\)/);
  });
});
