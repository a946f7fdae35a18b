// What describe tells about its inputs: a folder is one video, several images one answer.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('describe with a folder or several images', () => {
  it('says on stderr that a folder is one video and several images one caption, and how to caption each', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-frames-'));
    try {
      for (const f of ['a.png', 'b.png']) fs.copyFileSync(path.join(ROOT, 'examples', 'assets', 'shapes.png'), path.join(dir, f));
      const folder = spawnSync(process.execPath, [BIN, 'describe', dir, '--max-new-tokens', '2'], { encoding: 'utf8', cwd: ROOT });
      assert.equal(folder.status, 0, folder.stderr);
      assert.match(folder.stderr, /is a folder: read as the frames of one video \(2 images, in name order\); to caption images one by one, run `tfvlm batch --input FOLDER\|ITEMS\.jsonl --output RESULTS\.jsonl`/);
      const two = spawnSync(process.execPath, [BIN, 'describe', path.join(dir, 'a.png'), path.join(dir, 'b.png'), '--max-new-tokens', '2'], { encoding: 'utf8', cwd: ROOT });
      assert.equal(two.status, 0, two.stderr);
      assert.match(two.stderr, /2 images go into one user turn and get one answer; to caption images one by one, run `tfvlm batch --input FOLDER\|ITEMS\.jsonl --output RESULTS\.jsonl`/);
      const one = spawnSync(process.execPath, [BIN, 'describe', path.join(dir, 'a.png'), '--max-new-tokens', '2'], { encoding: 'utf8', cwd: ROOT });
      assert.doesNotMatch(one.stderr, /one by one/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
