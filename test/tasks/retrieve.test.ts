// `rank` / `tfvlm retrieve` end to end: tiny-clip and tiny-siglip (dual encoder: the golden
// logits_per_image from raw images and texts) and tiny-smolvlm (generative: log-likelihood matrix);
// the ranked table and --json output; `--images A B C --texts x y` word lists; refusals.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { initBackend, tf } from '../../src/backend/index.ts';
import { DualEncoder } from '../../src/tasks/dual-encoder.ts';
import { parseCommandArgs } from '../../src/cli/command.ts';
import { imagesAndTexts, retrieveCommand, runRetrieve } from '../../src/cli/retrieve.ts';
import { TfvlmError } from '../../src/errors.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { rank, rankOrder } from '../../src/tasks/retrieve.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';

function goldenCase(dir: string) {
  const c = JSON.parse(fs.readFileSync(fixture(dir, 'golden', 'cases.json'), 'utf8')).cases[0];
  return { ...c, imagePaths: (c.images as string[]).map((p) => fixture(dir, 'golden', p)) };
}

async function runCli(argv: string[]): Promise<{ code: number; out: string }> {
  const chunks: string[] = [];
  const code = await runRetrieve(parseCommandArgs(retrieveCommand, argv), (s) => { chunks.push(s); }, () => {});
  return { code, out: chunks.join('') };
}

describe('retrieval', () => {
  before(async () => { await initBackend(); });

  for (const dir of ['tiny-clip', 'tiny-siglip']) {
    it(`${dir}: rank() from raw images and texts = golden logits_per_image`, async () => {
      const c = goldenCase(dir);
      const r = await rank(fixture(dir), c.imagePaths, c.texts);
      assert.equal(r.method, 'dual-encoder');
      assertClose(r.scores.flat(), c.logits_per_image.flat(), TOLERANCE.float32, 'logits_per_image');
    });
  }

  it('dual encoder: embedArrays = golden embeddings; a text longer than the position table keeps its <|endoftext|>; no tensors leak', async () => {
    const c = goldenCase('tiny-clip');
    const enc = await DualEncoder.load(fixture('tiny-clip'));
    try {
      const long = 'a very long caption '.repeat(20);
      const [longIds] = enc.tokenize([long, 'a cat']).input_ids;
      assert.ok(longIds, 'ids of the long text');
      assert.equal(longIds.length, 24);
      assert.equal(longIds[23], 713);
      const arrays = await enc.embedArrays(c.imagePaths, c.texts);
      assert.deepEqual([arrays.image_embeds!.shape, arrays.text_embeds!.shape], [[3, 24], [4, 24]]);
      const golden = SafetensorsFile.open(fixture('tiny-clip', 'golden', 'three_images_four_texts.safetensors'));
      assertClose(arrays.text_embeds!.data, golden.readArray('text_embeds') as Float32Array, TOLERANCE.float32, 'text_embeds');
      assertClose(arrays.image_embeds!.data, golden.readArray('image_embeds') as Float32Array, TOLERANCE.float32, 'image_embeds');
      golden.close();
      await enc.score(c.imagePaths, [long, 'a cat']);
      const before = tf.memory().numTensors;
      await enc.score(c.imagePaths, [long, 'a cat']);
      assert.equal(tf.memory().numTensors, before);
    } finally {
      enc.dispose();
    }
  });

  it('tfvlm retrieve on tiny-clip: ranked table and --json', async () => {
    const c = goldenCase('tiny-clip');
    const table = await runCli(['--model', fixture('tiny-clip'), '--images', ...c.imagePaths, '--texts', ...c.texts, '--top', '2']);
    assert.equal(table.code, 0);
    assert.match(table.out, /^method: dual-encoder/);
    const best = rankOrder(c.logits_per_image[0])[0];
    assert.ok(best !== undefined, 'a best text');
    assert.ok(table.out.includes(`image 1: ${c.imagePaths[0]}\n  rank       score        prob  text\n     1  `));
    const [, image1] = table.out.split(`image 1: ${c.imagePaths[0]}`);
    assert.ok(image1 !== undefined, 'a table for image 1');
    assert.ok(image1.split('\n')[2]?.endsWith(JSON.stringify(c.texts[best])));
    const json = await runCli(['--model', fixture('tiny-clip'), '--images', ...c.imagePaths, '--texts', ...c.texts, '--json']);
    const parsed = JSON.parse(json.out);
    assert.equal(parsed.method, 'dual-encoder');
    assert.deepEqual(parsed.texts, c.texts);
    assertClose(parsed.scores.flat(), c.logits_per_image.flat(), TOLERANCE.float32, 'json scores');
  });

  it('tfvlm retrieve on tiny-smolvlm: generative log-likelihood, best first', async () => {
    const input = (f: string) => fixture('tiny-smolvlm', 'golden', 'inputs', f);
    const imgs: [string, string] = [input('small_64x48.png'), input('batch_b_160x40.png')];
    const texts = ['a cat', 'a red car', 'two dogs on a beach'];
    const { code, out } = await runCli(['--model', fixture('tiny-smolvlm'), '--images', ...imgs, '--texts', ...texts, '--json', '--batch', '2']);
    assert.equal(code, 0);
    const r = JSON.parse(out);
    assert.equal(r.method, 'generative');
    assert.equal(r.score_kind, 'log_prob');
    assert.equal(r.scores.length, 2);
    assert.ok(r.scores.flat().every((s: number) => s < 0 && Number.isFinite(s)));
    const table = await runCli(['--model', fixture('tiny-smolvlm'), '--images', imgs[0], '--texts', ...texts]);
    const order = rankOrder(r.scores[0]);
    const rows = table.out.split('\n').filter((l) => /^\s+\d+\s+-?\d/.test(l)).slice(0, 3);
    rows.forEach((l, k) => assert.ok(l.endsWith(JSON.stringify(texts[order[k]!])), l));
    assert.match(table.out, /mean\/token/);
  });

  it('tfvlm retrieve --dtype q8 ranks with the quantized generative model; a dual encoder refuses it by name', async () => {
    const imgs = [fixture('tiny-smolvlm', 'golden', 'inputs', 'small_64x48.png')];
    const texts = ['a cat', 'a red car'];
    const args = ['--model', fixture('tiny-smolvlm'), '--images', ...imgs, '--texts', ...texts, '--json'];
    const full = JSON.parse((await runCli(args)).out);
    const q8 = JSON.parse((await runCli([...args, '--dtype', 'q8', '--group-size', '32'])).out);
    assert.equal(q8.method, 'generative');
    assert.notDeepEqual(q8.scores, full.scores);
    for (let t = 0; t < texts.length; t++) assert.ok(Math.abs(q8.scores[0][t] - full.scores[0][t]) < 0.05 * Math.abs(full.scores[0][t]));
    const c = goldenCase('tiny-clip');
    await assert.rejects(runCli(['--model', fixture('tiny-clip'), '--images', c.imagePaths[0], '--texts', 'x', '--dtype', 'q4']),
      (e: Error) => e instanceof TfvlmError && /dual encoder \(CLIP\/SigLIP\), which runs in float32; dtype q4 applies to generative models/.test(e.message));
  });

  it('word lists after --images / --texts are sorted back by kind; refusals name the flag', async () => {
    const c = goldenCase('tiny-clip');
    const args = parseCommandArgs(retrieveCommand, ['--images', c.imagePaths[0], c.imagePaths[1], '--texts', 'a cat', 'a dog']);
    assert.deepEqual(imagesAndTexts(args), { images: c.imagePaths.slice(0, 2), texts: ['a cat', 'a dog'] });
    await assert.rejects(runCli(['--model', fixture('tiny-clip'), '--texts', 'x']), (e: Error) => e instanceof TfvlmError && /--images/.test(e.message));
    await assert.rejects(runCli(['--model', fixture('tiny-clip'), '--images', c.imagePaths[0]]), /--texts/);
    await assert.rejects(runCli(['--model', fixture('tiny-clip'), '--images', c.imagePaths[0], '--texts', 'x', '--top', '0']), /--top/);
    assert.ok(path.isAbsolute(c.imagePaths[0]));
  });
});
