// --convert-rgb: RGBA images through a SigLIP processor whose config leaves do_convert_rgb unset.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('--convert-rgb', () => {
  it('lets an RGBA image through a SigLIP processor whose config lacks do_convert_rgb (embed, retrieve, preprocess)', () => {
    const run = (argv: string[]) => spawnSync(process.execPath, [BIN, ...argv], { encoding: 'utf8', cwd: ROOT });
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
