// The `tfvlm` command itself: one error prefix, --version, and a model of the wrong kind pointed to the right command.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

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
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) {
      const r = spawnSync(process.execPath, [BIN, flag], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `tfvlm ${pkg.version}\n`);
    }
    assert.match(execFileSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' }), /--version/);
  });
});

describe('a dual encoder given to a generating command', () => {
  it('is refused with a pointer to embed and retrieve', () => {
    for (const model of ['test/fixtures/tiny-clip', 'test/fixtures/tiny-siglip']) {
      const r = spawnSync(process.execPath, [BIN, 'describe', 'examples/assets/shapes.png', '--model', model], {
        encoding: 'utf8', cwd: ROOT,
      });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /is a dual encoder .* it does not generate text: use `tfvlm embed` or `tfvlm retrieve`/, model);
    }
  });
});
