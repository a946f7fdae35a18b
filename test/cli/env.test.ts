import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));

describe('tfvlm env', () => {
  it('prints the chosen backend as JSON', () => {
    const out = execFileSync(process.execPath, [BIN, 'env', '--json'], { encoding: 'utf8' });
    const info = JSON.parse(out);
    assert.ok(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'].includes(info.backend));
    assert.equal(info.tfjsVersion, '4.22.0');
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
