import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { dataCommand } from '../../examples/shapes-demo/data.ts';
import { parseCommandArgs } from '../../src/cli/command.ts';
import { TfvlmError } from '../../src/errors.ts';
import { readConversations, readJsonl } from '../../src/train/jsonl.ts';

async function runData(argv: string[]): Promise<{ code: number; stdout: string }> {
  const write = process.stdout.write;
  let stdout = '';
  // Pass everything through: the test reporter writes to the same stream meanwhile.
  process.stdout.write = ((chunk: string, ...rest: never[]) => {
    stdout += chunk;
    return write.call(process.stdout, chunk, ...rest);
  }) as typeof process.stdout.write;
  try {
    const code = await dataCommand.run(parseCommandArgs(dataCommand, argv));
    return { code, stdout };
  } finally {
    process.stdout.write = write;
  }
}

/** sha256 of every file under dir, keyed by relative path. */
async function hashTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath ?? entry.path, entry.name);
    out.set(path.relative(dir, full), createHash('sha256').update(await readFile(full)).digest('hex'));
  }
  return out;
}

describe('npm run demo:data (examples/shapes-demo/data.ts)', () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'tfvlm-shapes-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('writes images/, data.jsonl and scenes.jsonl and prints the counts', async () => {
    const out = path.join(tmp, 'a');
    const { code, stdout } = await runData(['--n', '12', '--seed', '7', '--out', out, '--questions-per-image', '2']);
    assert.equal(code, 0);
    assert.match(stdout, /wrote 12 images and 36 conversations/);
    assert.match(stdout, /captions\s+12\b/);
    assert.match(stdout, /questions\s+24\b/);
    assert.deepEqual((await readdir(out)).sort(), ['data.jsonl', 'images', 'scenes.jsonl']);
    const images = (await readdir(path.join(out, 'images'))).sort();
    assert.deepEqual(images, Array.from({ length: 12 }, (_, i) => `${String(i).padStart(6, '0')}.png`));

    const convs = await readConversations(path.join(out, 'data.jsonl'));
    assert.equal(convs.length, 36);
    assert.equal(convs.filter((c) => c.kind === 'caption').length, 12);
    for (const c of convs) {
      const img = c.messages[0]?.content[0];
      assert.ok(img, 'a first message with a first part');
      assert.equal(img.type, 'image');
      if (img.type === 'image') assert.ok(images.includes(path.basename(img.image)) && img.image.startsWith('images/'));
    }
    const scenes = await readJsonl(path.join(out, 'scenes.jsonl'));
    assert.equal(scenes.length, 12);
  });

  it('is byte-identical for the same seed and differs for another seed', async () => {
    const argv = (seed: string, dir: string) => ['--n', '8', '--seed', seed, '--out', path.join(tmp, dir)];
    await runData(argv('3', 'b1'));
    await runData(argv('3', 'b2'));
    await runData(argv('4', 'c'));
    const tree = (d: string) => hashTree(path.join(tmp, d));
    const [b1, b2, c] = await Promise.all([tree('b1'), tree('b2'), tree('c')]);
    assert.equal(b1.size, 8 + 2);
    assert.deepEqual(b2, b1);
    assert.notEqual(c.get('data.jsonl'), b1.get('data.jsonl'));
    assert.notEqual(c.get('scenes.jsonl'), b1.get('scenes.jsonl'));
    const sameImages = [...b1.keys()].filter((k) => k.startsWith('images') && b1.get(k) === c.get(k));
    assert.ok(sameImages.length < 2, `seeds 3 and 4 share images ${sameImages.join(', ')}`);
  });

  it('keeps the images when only --questions-per-image changes', async () => {
    await runData(['--n', '6', '--seed', '5', '--out', path.join(tmp, 'q1'), '--questions-per-image', '1']);
    await runData(['--n', '6', '--seed', '5', '--out', path.join(tmp, 'q4'), '--questions-per-image', '4']);
    const [q1, q4] = await Promise.all([hashTree(path.join(tmp, 'q1')), hashTree(path.join(tmp, 'q4'))]);
    for (const [k, h] of q1) if (k !== 'data.jsonl') assert.equal(q4.get(k), h, k);
    assert.notEqual(q4.get('data.jsonl'), q1.get('data.jsonl'));
  });

  it('groups the questions into multi-turn conversations with --questions-per-conversation', async () => {
    const single = path.join(tmp, 'turns1');
    const grouped = path.join(tmp, 'turns3');
    await runData(['--n', '5', '--seed', '8', '--out', single, '--questions-per-image', '7']);
    const { code, stdout } = await runData(['--n', '5', '--seed', '8', '--out', grouped,
      '--questions-per-image', '7', '--questions-per-conversation', '3']);
    assert.equal(code, 0);
    const one = (await readConversations(path.join(single, 'data.jsonl'))).filter((c) => c.kind === 'qa');
    const many = (await readConversations(path.join(grouped, 'data.jsonl'))).filter((c) => c.kind === 'qa');
    assert.match(stdout, new RegExp(`wrote 5 images and ${5 + many.length} conversations`));
    assert.match(stdout, new RegExp(`questions\\s+${one.length}\\b`));
    // The same questions in the same order, at most 3 per conversation, the image in the first turn only.
    const text = (m: (typeof one)[number]['messages'][number]) => m.content.flatMap((p) => (p.type === 'text' ? [p.text] : []));
    assert.deepEqual(many.flatMap((c) => c.messages.flatMap(text)), one.flatMap((c) => c.messages.flatMap(text)));
    for (const c of many) {
      const turns = c.messages.length / 2;
      assert.ok(turns >= 1 && turns <= 3);
      assert.deepEqual(c.messages.map((m) => m.role), Array.from({ length: turns }, () => ['user', 'assistant']).flat());
      assert.deepEqual(c.messages.map((m) => m.content.filter((p) => p.type === 'image').length), c.messages.map((_, i) => (i === 0 ? 1 : 0)));
      assert.equal(c.task, turns === 1 ? c.task : 'mixed');
    }
    assert.ok(many.some((c) => c.messages.length === 6), 'some conversation has three turns');
    await assert.rejects(runData(['--n', '1', '--out', path.join(tmp, 'turns0'), '--questions-per-conversation', '0']),
      /questions per conversation must be a positive integer, got 0/);
  });

  it('honours --size', async () => {
    const out = path.join(tmp, 'size');
    await runData(['--n', '2', '--seed', '1', '--out', out, '--size', '48']);
    const png = await readFile(path.join(out, 'images', '000000.png'));
    // IHDR: width and height are the big-endian words at bytes 16 and 20.
    assert.equal(png.readUInt32BE(16), 48);
    assert.equal(png.readUInt32BE(20), 48);
  });

  it('refuses to overwrite a dataset unless --force, and --force leaves no stale image', async () => {
    const out = path.join(tmp, 'force');
    await runData(['--n', '5', '--out', out]);
    await assert.rejects(runData(['--n', '3', '--out', out]), /--force/);
    await writeFile(path.join(out, 'notes.txt'), 'kept');
    await runData(['--n', '3', '--out', out, '--force']);
    assert.equal((await readdir(path.join(out, 'images'))).length, 3);
    assert.equal(await readFile(path.join(out, 'notes.txt'), 'utf8'), 'kept');
  });

  it('rejects bad arguments with a TfvlmError naming them', async () => {
    const out = path.join(tmp, 'bad');
    await assert.rejects(runData(['pictures', '--n', '3', '--out', out]), TfvlmError);
    await assert.rejects(runData(['--out', out]), /--n is required/);
    await assert.rejects(runData(['--n', '3']), /--out is required/);
    await assert.rejects(runData(['--n', '0', '--out', out]), /n must be a positive integer/);
    await assert.rejects(runData(['--n', '2', '--out', out, '--size', '10']), /image size/);
    await assert.rejects(runData(['--n', '2', '--out', out, '--seed', '-1']), /seed/);
  });
});
