// Opt-in check against a real Pillow: TFVLM_PILLOW_PYTHON=/usr/bin/python3 (with Pillow + numpy,
// e.g. Debian's python3-pil 9.4, the version the goldens were made with). pillow_reference.py
// writes random resize cases (every mode × filter), an alpha composite and encoded files; this
// test requires byte-identical results.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadImage } from '../../src/io/image.ts';
import { compositeOverWhite } from '../../src/processing/image.ts';
import { type ImageMode, convertToRGB } from '../../src/io/bitmap.ts';
import { type ResamplingFilter, resize } from '../../src/processing/resample.ts';
import { image } from '../helpers/paths.ts';
import { sha256 } from './goldens.ts';

const python = process.env.TFVLM_PILLOW_PYTHON;
const skip = python ? false : 'set TFVLM_PILLOW_PYTHON to a python with Pillow + numpy';

interface Manifest {
  pillow: string;
  resize: { i: number; mode: ImageMode; w: number; h: number; W: number; H: number; filter: ResamplingFilter }[];
  decode: { name: string; mode: string; size: [number, number]; rgb_sha256: string }[];
}

let dir = '';
let manifest: Manifest;

describe('byte-identical to Pillow', { skip }, () => {
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-pillow-'));
    const script = fileURLToPath(new URL('pillow_reference.py', import.meta.url));
    const r = spawnSync(python!, [script, dir, '200', image('chelsea.png')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  });
  after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  it('resize: random sizes, every mode and filter', () => {
    const bad: string[] = [];
    for (const c of manifest.resize) {
      const data = new Uint8Array(fs.readFileSync(path.join(dir, `resize${c.i}.in`)));
      const expected = new Uint8Array(fs.readFileSync(path.join(dir, `resize${c.i}.out`)));
      const out = resize({ width: c.w, height: c.h, mode: c.mode, data }, c.W, c.H, c.filter);
      if (Buffer.compare(Buffer.from(out.data), Buffer.from(expected)) !== 0) bad.push(JSON.stringify(c));
    }
    assert.deepEqual(bad, [], `Pillow ${manifest.pillow}: ${bad.length} of ${manifest.resize.length} differ`);
  });

  it('alpha composite over white', () => {
    const src = fs.readFileSync(path.join(dir, 'composite.in'));
    const expected = fs.readFileSync(path.join(dir, 'composite.out'));
    for (let p = 0; p < 64 * 64; p++) {
      for (let c = 0; c < 3; c++) assert.equal(compositeOverWhite(src[p * 4 + c]!, src[p * 4 + 3]!), expected[p * 3 + c], `pixel ${p}`);
    }
  });

  it('decode (PNG modes, GIF, BMP, JPEG variants, EXIF orientations)', async () => {
    for (const c of manifest.decode) {
      const img = await loadImage(path.join(dir, c.name));
      assert.deepEqual([img.width, img.height], c.size, c.name);
      assert.equal(sha256(convertToRGB(img).data), c.rgb_sha256, `${c.name} (Pillow mode ${c.mode}, ours ${img.mode})`);
    }
  });
});
