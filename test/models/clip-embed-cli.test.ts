// `tfvlm embed`: from the image files through the folder's CLIPImageProcessor and the CLIP vision
// tower to the golden image_embeds (tiny-clip), written to safetensors and printed as JSON; a LLaVA
// folder gives its tower's normalised pooled CLS.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';
import { parseCommandArgs } from '../../src/cli/command.ts';
import { embedCommand } from '../../src/cli/embed.ts';
import { TfvlmError } from '../../src/errors.ts';

const CLIP = fixture('tiny-clip');
const GOLDEN = fixture('tiny-clip', 'golden');
const cases = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'cases.json'), 'utf8')).cases as { name: string; images: string[] }[];

const EMBED = fileURLToPath(new URL('../../src/cli/embed.ts', import.meta.url));
const COMMAND = fileURLToPath(new URL('../../src/cli/command.ts', import.meta.url));
// The lead registers embedCommand in src/cli.ts; until then the command runs through this snippet.
const RUNNER = `import { embedCommand } from ${JSON.stringify(EMBED)};
import { parseCommandArgs } from ${JSON.stringify(COMMAND)};
try {
  process.exitCode = await embedCommand.run(parseCommandArgs(embedCommand, process.argv.slice(1)));
} catch (e) {
  process.stderr.write(String(e.message) + '\\n');
  process.exitCode = 2;
}`;

/** Runs `tfvlm embed ARGV…` in a child process. */
function run(argv: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', RUNNER, '--', ...argv], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('tfvlm embed', () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-embed-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const c of cases) {
    it(`${c.name}: image files → golden image_embeds (--out and --json)`, () => {
      const images = c.images.map((p) => path.join(GOLDEN, p));
      const out = path.join(tmp, `${c.name}.safetensors`);
      const { code, stdout, stderr } = run([...images, '--model', CLIP, '--out', out, '--json']);
      assert.equal(code, 0, stderr);
      const golden = SafetensorsFile.open(path.join(GOLDEN, `${c.name}.safetensors`));
      const expected = golden.readArray('image_embeds') as Float32Array;
      const shape = golden.entry('image_embeds').shape;
      golden.close();
      const written = SafetensorsFile.open(out);
      assert.deepEqual(written.entry('image_embeds').shape, shape);
      assertClose(written.readArray('image_embeds') as Float32Array, expected, TOLERANCE.float32, 'written image_embeds');
      written.close();
      const json = JSON.parse(stdout);
      assert.deepEqual(json.shape, shape);
      assert.equal(json.projected, true);
      assert.deepEqual(json.images, images);
      assertClose(Float32Array.from(json.image_embeds.flat()), expected, TOLERANCE.float32, 'JSON image_embeds');
    });
  }

  it('a LLaVA folder: one unit-norm pooled row per image, hidden_size wide', () => {
    const image = path.join(fixture('tiny-llava', 'golden', 'inputs'), 'wide_100x70.png');
    const { stdout } = run([image, image, '--model', fixture('tiny-llava'), '--json']);
    const json = JSON.parse(stdout);
    assert.deepEqual(json.shape, [2, 32]);
    assert.equal(json.projected, false);
    for (const row of json.image_embeds as number[][]) assert.ok(Math.abs(Math.hypot(...row) - 1) < 1e-5);
    assert.deepEqual(json.image_embeds[0], json.image_embeds[1]);
  });

  it('plain output: one line per image', () => {
    const image = path.join(GOLDEN, 'inputs', 'small_20x24.png');
    const { stdout } = run([image, '--model', CLIP]);
    assert.match(stdout, /small_20x24\.png: \[24\] -?\d\.\d{4}, /);
  });

  it('refuses a call without images and a folder without a CLIP tower (before writing anything)', async () => {
    await assert.rejects(embedCommand.run(parseCommandArgs(embedCommand, ['--model', CLIP])),
      (e: Error) => e instanceof TfvlmError && /tfvlm embed: give at least one IMAGE/.test(e.message));
    const image = path.join(GOLDEN, 'inputs', 'small_20x24.png');
    await assert.rejects(embedCommand.run(parseCommandArgs(embedCommand, [image, '--model', fixture('tiny-smolvlm')])),
      (e: Error) => e instanceof TfvlmError && /tfvlm embed needs a CLIPImageProcessor, got Idefics3ImageProcessor/.test(e.message));
  });
});

describe('tfvlm embed --text (dual encoders)', () => {
  it('tiny-clip and tiny-siglip: text_embeds of the golden texts', async () => {
    for (const folder of ['tiny-clip', 'tiny-siglip']) {
      const c = JSON.parse(fs.readFileSync(fixture(folder, 'golden', 'cases.json'), 'utf8')).cases[0] as { name: string; texts: string[] };
      const { code, stdout, stderr } = run([...c.texts.flatMap((t) => ['--text', t]), '--model', fixture(folder), '--json']);
      assert.equal(code, 0, stderr);
      const golden = SafetensorsFile.open(fixture(folder, 'golden', `${c.name}.safetensors`));
      assertClose(Float32Array.from(JSON.parse(stdout).text_embeds.flat()), golden.readArray('text_embeds'), TOLERANCE.float32, `${folder} text_embeds`);
      golden.close();
    }
  });
});
