import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('tfvlm env', () => {
  it('prints the chosen backend as JSON', () => {
    const out = execFileSync(process.execPath, [BIN, 'env', '--json'], { encoding: 'utf8' });
    const info = JSON.parse(out);
    assert.ok(['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu'].includes(info.backend));
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

describe('TFVLM_BACKEND=cpu', () => {
  it("runs without tfjs's 'install our node backend' banner", () => {
    const r = spawnSync(process.execPath, [BIN, 'describe', 'examples/assets/shapes.png', '--max-new-tokens', '2', '-q'], {
      encoding: 'utf8', cwd: ROOT, env: { ...process.env, TFVLM_BACKEND: 'cpu' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /install our node backend/);
    assert.match(r.stdout, /\w/);
  });
});
