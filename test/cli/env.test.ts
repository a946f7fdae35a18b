import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs, { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));

describe('tfvlm env', () => {
  it('prints the chosen backend as JSON', () => {
    const out = execFileSync(process.execPath, [BIN, 'env', '--json'], { encoding: 'utf8' });
    const info = JSON.parse(out);
    assert.ok(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'].includes(info.backend));
    assert.equal(info.tfjs_version, '4.22.0');
    assert.ok(info.threads >= 1);
  });

  it('honours TFVLM_BACKEND and names a missing backend', () => {
    const cpu = execFileSync(process.execPath, [BIN, 'env', '--json'], {
      encoding: 'utf8',
      env: { ...process.env, TFVLM_BACKEND: 'cpu' },
    });
    assert.equal(JSON.parse(cpu).backend, 'cpu');
    const bad = spawnSync(process.execPath, [BIN, 'env'], {
      encoding: 'utf8',
      env: { ...process.env, TFVLM_BACKEND: 'nonsense' },
    });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /TFVLM_BACKEND=nonsense is not a backend/);
  });

  it('lists commands in --help and rejects unknown ones', () => {
    const help = execFileSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
    assert.match(help, /env\s+print the tfjs backend/);
    const bad = spawnSync(process.execPath, [BIN, 'frobnicate'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown command 'frobnicate'/);
  });
});

describe('tfvlm errors and --version', () => {
  it('print the command prefix once', () => {
    const r = spawnSync(process.execPath, [BIN, 'quantize'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^tfvlm quantize: expected one MODEL/);
    assert.doesNotMatch(r.stderr, /tfvlm quantize: tfvlm quantize:/);
    const bad = spawnSync(process.execPath, [BIN, 'describe', '--dtype', 'q5', 'x.png'], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^tfvlm describe: --dtype must be auto, q8 or q4, got 'q5'/);
    assert.doesNotMatch(bad.stderr, /tfvlm describe: tfvlm describe:/);
  });

  it('--version prints the package version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) {
      const r = spawnSync(process.execPath, [BIN, flag], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `tfvlm ${pkg.version}\n`);
    }
    assert.match(execFileSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' }), /--version/);
  });
});

describe('--json output', () => {
  /** Every identifier-like key of v, recursively (data keys such as package names are not identifiers). */
  const keys = (v: unknown, out: string[] = []): string[] => {
    if (Array.isArray(v)) v.forEach((x) => keys(x, out));
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (/^[A-Za-z][A-Za-z0-9_]*$/.test(k)) out.push(k);
        keys(x, out);
      }
    }
    return out;
  };

  it('is snake_case everywhere: env, a generating command, prompt', () => {
    const runs = [
      ['env', '--json'],
      ['describe', 'examples/assets/shapes.png', '--json', '-q', '--max-new-tokens', '4'],
      ['prompt', '--prompt', '<image>Hi', '--image', 'examples/assets/shapes.png', '--json'],
    ];
    for (const argv of runs) {
      const out = JSON.parse(execFileSync(process.execPath, [BIN, ...argv], { encoding: 'utf8', cwd: fileURLToPath(new URL('../..', import.meta.url)) }));
      const camel = keys(out).filter((k) => !/^[a-z0-9_]+$/.test(k));
      assert.deepEqual(camel, [], `tfvlm ${argv[0]} --json keys`);
    }
    const env = JSON.parse(execFileSync(process.execPath, [BIN, 'env', '--json'], { encoding: 'utf8' }));
    assert.equal(env.tfjs_version, '4.22.0');
    assert.ok(env.fast_paths_verified_on['@tensorflow/tfjs-core'], 'data keys stay as they are');
  });
});

describe('TFVLM_BACKEND=cpu', () => {
  it("runs without tfjs's 'install our node backend' banner", () => {
    const r = spawnSync(process.execPath, [BIN, 'describe', 'examples/assets/shapes.png', '--max-new-tokens', '2', '-q'], {
      encoding: 'utf8', cwd: fileURLToPath(new URL('../..', import.meta.url)), env: { ...process.env, TFVLM_BACKEND: 'cpu' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /install our node backend/);
    assert.match(r.stdout, /\w/);
  });
});

describe('a dual encoder given to a generating command', () => {
  it('is refused with a pointer to embed and retrieve', () => {
    for (const model of ['test/fixtures/tiny-clip', 'test/fixtures/tiny-siglip']) {
      const r = spawnSync(process.execPath, [BIN, 'describe', 'examples/assets/shapes.png', '--model', model], {
        encoding: 'utf8', cwd: fileURLToPath(new URL('../..', import.meta.url)),
      });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /is a dual encoder .* it does not generate text: use `tfvlm embed` or `tfvlm retrieve`/, model);
    }
  });
});

describe('describe with a folder or several images', () => {
  it('says on stderr that a folder is one video and several images one caption, and how to caption each', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-frames-'));
    try {
      for (const f of ['a.png', 'b.png']) fs.copyFileSync(path.join(root, 'examples', 'assets', 'shapes.png'), path.join(dir, f));
      const folder = spawnSync(process.execPath, [BIN, 'describe', dir, '--max-new-tokens', '2'], { encoding: 'utf8', cwd: root });
      assert.equal(folder.status, 0, folder.stderr);
      assert.match(folder.stderr, /is a folder: read as the frames of one video \(2 images, in name order\); to caption images one by one, run `tfvlm describe IMAGE` for each/);
      const two = spawnSync(process.execPath, [BIN, 'describe', path.join(dir, 'a.png'), path.join(dir, 'b.png'), '--max-new-tokens', '2'], { encoding: 'utf8', cwd: root });
      assert.equal(two.status, 0, two.stderr);
      assert.match(two.stderr, /2 images go into one user turn and get one answer; to caption images one by one, run `tfvlm describe IMAGE` for each/);
      const one = spawnSync(process.execPath, [BIN, 'describe', path.join(dir, 'a.png'), '--max-new-tokens', '2'], { encoding: 'utf8', cwd: root });
      assert.doesNotMatch(one.stderr, /one by one/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('--convert-rgb', () => {
  it('lets an RGBA image through a SigLIP processor whose config lacks do_convert_rgb (embed, retrieve, preprocess)', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const run = (argv: string[]) => spawnSync(process.execPath, [BIN, ...argv], { encoding: 'utf8', cwd: root });
    const dump = path.join(os.tmpdir(), `tfvlm-rgba-${process.pid}.safetensors`);
    const commands = [
      ['embed', 'test/images/horse.png', '--model', 'test/fixtures/tiny-siglip'],
      ['retrieve', '--images', 'test/images/horse.png', '--texts', 'a horse', '--model', 'test/fixtures/tiny-siglip'],
      ['preprocess', 'test/images/horse.png', '--processor', 'test/fixtures/tiny-siglip', '--dump', dump],
    ];
    try {
      for (const argv of commands) {
        const without = run(argv);
        assert.equal(without.status, 1, `${argv[0]}: ${without.stderr}`);
        assert.match(without.stderr, /an RGBA image needs do_convert_rgb: true, which this config does not set: pass --convert-rgb/, argv[0]);
        const withFlag = run([...argv, '--convert-rgb']);
        assert.equal(withFlag.status, 0, `${argv[0]} --convert-rgb: ${withFlag.stderr}`);
      }
    } finally {
      fs.rmSync(dump, { force: true });
    }
  });
});

describe('progress on forward and retrieve', () => {
  it('shows the vision pass and prefill on stderr (TFVLM_PROGRESS_AFTER_MS=0: at once), and nothing with -q', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const dump = path.join(os.tmpdir(), `tfvlm-progress-${process.pid}.safetensors`);
    const env = { ...process.env, TFVLM_PROGRESS_AFTER_MS: '0' };
    const runs = [
      ['forward', '--prompt', '<image>Hi', '--image', 'examples/assets/shapes.png', '--dump', dump],
      ['retrieve', '--images', 'examples/assets/shapes.png', '--texts', 'a circle', 'a square'],
    ];
    try {
      for (const argv of runs) {
        const r = spawnSync(process.execPath, [BIN, ...argv], { encoding: 'utf8', cwd: root, env });
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /vision encoder 100% \(\d+\/\d+ layers/, argv[0]);
        assert.match(r.stderr, /prefill 100% \(\d+\/\d+ layers/, argv[0]);
        const quiet = spawnSync(process.execPath, [BIN, ...argv, '-q'], { encoding: 'utf8', cwd: root, env });
        assert.equal(quiet.status, 0, quiet.stderr);
        assert.doesNotMatch(quiet.stderr, /vision encoder|prefill/, `${argv[0]} -q`);
      }
      const bad = spawnSync(process.execPath, [BIN, ...runs[1]!], { encoding: 'utf8', cwd: root, env: { ...process.env, TFVLM_PROGRESS_AFTER_MS: 'soon' } });
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /TFVLM_PROGRESS_AFTER_MS=soon is not a non-negative number/);
    } finally {
      fs.rmSync(dump, { force: true });
    }
  });
});
