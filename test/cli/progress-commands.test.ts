// Progress on stderr for forward and retrieve, as the generating commands print it (src/cli/progress-printer.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('progress on forward and retrieve', () => {
  it('shows the vision pass and prefill on stderr (TFVLM_PROGRESS_AFTER_MS=0: at once), and nothing with -q', () => {
    const dump = path.join(os.tmpdir(), `tfvlm-progress-${process.pid}.safetensors`);
    const env = { ...process.env, TFVLM_PROGRESS_AFTER_MS: '0' };
    const runs = [
      ['forward', '--prompt', '<image>Hi', '--image', 'examples/assets/shapes.png', '--dump', dump],
      ['retrieve', '--images', 'examples/assets/shapes.png', '--texts', 'a circle', 'a square'],
    ];
    try {
      for (const argv of runs) {
        const r = spawnSync(process.execPath, [BIN, ...argv], { encoding: 'utf8', cwd: ROOT, env });
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /vision encoder 100% \(\d+\/\d+ layers/, argv[0]);
        assert.match(r.stderr, /prefill 100% \(\d+\/\d+ layers/, argv[0]);
        const quiet = spawnSync(process.execPath, [BIN, ...argv, '-q'], { encoding: 'utf8', cwd: ROOT, env });
        assert.equal(quiet.status, 0, quiet.stderr);
        assert.doesNotMatch(quiet.stderr, /vision encoder|prefill/, `${argv[0]} -q`);
      }
      const bad = spawnSync(process.execPath, [BIN, ...runs[1]!], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, TFVLM_PROGRESS_AFTER_MS: 'soon' } });
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /TFVLM_PROGRESS_AFTER_MS=soon is not a non-negative number/);
    } finally {
      fs.rmSync(dump, { force: true });
    }
  });
});
