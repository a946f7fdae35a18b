// The wasm fast paths go in only on the tfjs release they were verified on. With another one the
// backend starts on tfjs's own kernels, says why, and the model still matches its goldens.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { backendInfo, initBackend, setComputeThreads, tf } from '../../src/backend/index.ts';
import { fusedKernelsActive } from '../../src/backend/fused-kernels.ts';
import { wasmThreading } from '../../src/backend/wasm.ts';
import {
  installedTfjsVersions, unverifiedTfjs, WASM_FAST_PATHS_VERIFIED_ON, type TfjsVersions,
} from '../../src/backend/tfjs-versions.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Starts the backend with tfjs-backend-wasm 4.99.0 in the version check (see the file). */
const PRELOAD = fileURLToPath(new URL('./start-unverified-tfjs.ts', import.meta.url));

const VERIFIED: TfjsVersions = { ...WASM_FAST_PATHS_VERIFIED_ON };
const PATCH_RELEASE: TfjsVersions = { ...VERIFIED, '@tensorflow/tfjs-backend-wasm': '4.22.1' };

/** Runs `args` in a fresh Node with the unverified start preloaded; resolves with what it printed. */
function runUnverified(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['TFVLM_BACKEND', 'TFVLM_FUSED', 'NODE_TEST_CONTEXT']) delete env[k];
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', '--import', PRELOAD, ...args],
      { cwd: ROOT, env, timeout: 300_000, killSignal: 'SIGKILL', maxBuffer: 64 << 20 },
      (_err, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
    );
  });
}

describe('tfjs version check', () => {
  it('accepts exactly the verified versions, which package.json pins and node_modules holds', async () => {
    assert.equal(unverifiedTfjs(VERIFIED), null);
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    assert.deepEqual(installedTfjsVersions(wasm.version_wasm), VERIFIED, 'the suite runs on the verified tfjs');
    const pkg = JSON.parse(fs.readFileSync(`${ROOT}/package.json`, 'utf8'));
    const pinned = { ...pkg.dependencies, ...pkg.optionalDependencies } as Record<string, string>;
    const verified = WASM_FAST_PATHS_VERIFIED_ON['@tensorflow/tfjs-core'];
    for (const name of ['tfjs-core', 'tfjs-backend-wasm', 'tfjs-backend-cpu', 'tfjs-node', 'tfjs-node-gpu']) {
      assert.equal(pinned[`@tensorflow/${name}`], verified, `package.json pins @tensorflow/${name} exactly`);
    }
  });

  it('refuses any other tfjs-backend-wasm or tfjs-core, naming the installed and the verified version', () => {
    assert.equal(
      unverifiedTfjs(PATCH_RELEASE),
      'unverified tfjs: @tensorflow/tfjs-backend-wasm 4.22.1 is installed, verified on 4.22.0',
    );
    assert.equal(
      unverifiedTfjs({ ...VERIFIED, '@tensorflow/tfjs-core': '4.21.0' }),
      'unverified tfjs: @tensorflow/tfjs-core 4.21.0 is installed, verified on 4.22.0',
    );
    assert.match(
      unverifiedTfjs({ '@tensorflow/tfjs-core': '5.0.0', '@tensorflow/tfjs-backend-wasm': '4.22.0-rc.1' }) ?? '',
      /tfjs-core 5\.0\.0 is installed, verified on 4\.22\.0; @tensorflow\/tfjs-backend-wasm 4\.22\.0-rc\.1 is installed/,
    );
  });
});

describe('wasm backend on an unverified tfjs', () => {
  const KERNELS = ['Slice', 'Unpack', 'SplitV', 'BatchMatMul'];
  let stock: Map<string, tf.KernelFunc>;

  before(async () => {
    // tfjs-backend-wasm registers its own kernels on import; the fast paths would replace these.
    await import('@tensorflow/tfjs-backend-wasm');
    stock = new Map(KERNELS.map((k) => [k, tf.getKernel(k, 'wasm')!.kernelFunc]));
    assert.equal(await initBackend('wasm', { tfjsVersions: PATCH_RELEASE }), 'wasm');
  });

  it('leaves the fast paths out and says why in backendInfo', async () => {
    const info = await backendInfo();
    const reason = 'unverified tfjs: @tensorflow/tfjs-backend-wasm 4.22.1 is installed, verified on 4.22.0';
    assert.equal(info.backend, 'wasm');
    assert.equal(info.wasmVersion, '4.22.1');
    assert.deepEqual(info.fastPathsVerifiedOn, VERIFIED);
    assert.equal(info.fastPaths, false);
    assert.equal(info.fastPathsOff, reason);
    assert.equal(fusedKernelsActive(), false);
    assert.equal(tf.getKernel('TfvlmRMSNorm', 'wasm'), undefined, 'no fused kernel registered');
    for (const k of KERNELS) assert.equal(tf.getKernel(k, 'wasm')!.kernelFunc, stock.get(k), `tfjs's own ${k}`);
    const threading = wasmThreading()!;
    if (threading.started > 1) {
      assert.equal(threading.switchUnavailable, reason, 'no thread-pool switch');
      assert.equal(setComputeThreads(1), threading.started);
    }
  });

  it("computes slices, splits and transposed products like the reference on tfjs's own kernels", () => {
    const a = tf.tensor3d(Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i), [2, 3, 4]);
    assert.deepEqual(Array.from(tf.slice(a, [1, 1, 1], [1, 2, 2]).dataSync()), [17, 18, 21, 22]);
    const [, , unstacked2] = tf.unstack(a, 1);
    assert.ok(unstacked2, 'unstack along axis 1 gives 3 slices');
    assert.deepEqual(Array.from(unstacked2.dataSync()), [8, 9, 10, 11, 20, 21, 22, 23]);
    const [, split1] = tf.split(a, [1, 3], 2);
    assert.ok(split1, 'split into [1, 3] gives 2 parts');
    assert.deepEqual(Array.from(split1.dataSync()), [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19, 21, 22, 23]);
    const m = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    assertClose(tf.matMul(m, m, true, false).dataSync(), [17, 22, 27, 22, 29, 36, 27, 36, 45], TOLERANCE.exact, 'aᵀ·a');
    assertClose(tf.matMul(m, m, false, true).dataSync(), [14, 32, 32, 77], TOLERANCE.exact, 'a·aᵀ');
  });

  it('still matches the tiny SmolVLM goldens: every intermediate, logits and greedy generation', async () => {
    const files = ['test/models/idefics3-parity.test.ts', 'test/generation/golden-generate.test.ts'];
    const runs = await Promise.all(files.map((f) => runUnverified([f])));
    runs.forEach((run, i) => {
      assert.equal(run.code, 0, `${files[i]} without the fast paths:\n${run.stdout.slice(-4000)}\n${run.stderr.slice(-2000)}`);
      assert.match(run.stdout, /^# fail 0$/m, files[i]);
      assert.doesNotMatch(run.stdout, /^# pass 0$/m, `${files[i]} ran no tests`);
      assert.match(run.stderr, /wasm fast paths off, tfjs runs its own kernels: unverified tfjs/);
    });
  });

  it('tfvlm env prints the verified versions and why the fast paths are off', async () => {
    const run = await runUnverified(['src/cli.ts', 'env']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^tfjs\s+4\.22\.0 \(@tensorflow\/tfjs-backend-wasm 4\.99\.0\)$/m);
    assert.match(
      run.stdout,
      /^fast paths\s+off \(unverified tfjs: @tensorflow\/tfjs-backend-wasm 4\.99\.0 is installed, verified on 4\.22\.0\)$/m,
    );
  });
});
