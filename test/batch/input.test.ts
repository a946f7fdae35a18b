// The batch input: JSONL lines and folders as items, every bad line named by file:line and field,
// duplicate ids refused before any work, shards that split the ids exactly once whatever the order.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BatchInputError, folderItems, inputItems, openInput, parseItemLine } from '../../src/batch/input.ts';
import { readLines } from '../../src/batch/jsonl-lines.ts';
import { planBatch } from '../../src/batch/plan.ts';
import { inShard, parseShard, shardOf } from '../../src/batch/shard.ts';
import { formatDuration, batchProgress } from '../../src/batch/progress.ts';

let tmp: string;
before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-batch-input-')); });
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const writeLines = (name: string, lines: (string | object)[], end = '\n') => {
  const file = path.join(tmp, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + end);
  return file;
};
const collect = async <T>(it: AsyncIterable<T>) => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};

describe('batch input', () => {
  it('reads lines in small chunks with their byte offsets, CRLF and a BOM tolerated, an unterminated tail flagged', async () => {
    const file = path.join(tmp, 'lines.txt');
    fs.writeFileSync(file, '\ufeffab\r\nçé\n\nlast');
    const lines = await collect(readLines(file, 3));
    assert.deepEqual(lines.map((l) => [l.number, l.text, l.start, l.end, l.terminated]), [
      [1, 'ab', 0, 7, true], [2, 'çé', 7, 12, true], [3, '', 12, 13, true], [4, 'last', 13, 17, false],
    ]);
  });

  it('JSONL items: image or images, per-item prompt or question, paths relative to the file\'s folder, blank lines skipped', async () => {
    const file = writeLines('sub/items.jsonl', [
      { id: 'a', image: 'a.png' },
      '',
      { id: 'b', images: ['x/b1.png', '/abs/b2.png'], prompt: 'Count the shapes.' },
      { id: 'c', image: 'data:image/png;base64,AAAA', question: 'What colour?' },
    ]);
    const items = await collect(inputItems(openInput(file)));
    const dir = path.join(tmp, 'sub');
    assert.deepEqual(items, [
      { id: 'a', images: ['a.png'], single: true, sources: [path.join(dir, 'a.png')], where: `${file}:1` },
      { id: 'b', images: ['x/b1.png', '/abs/b2.png'], single: false, sources: [path.join(dir, 'x/b1.png'), '/abs/b2.png'], prompt: 'Count the shapes.', where: `${file}:3` },
      { id: 'c', images: ['data:image/png;base64,AAAA'], single: true, sources: ['data:image/png;base64,AAAA'], question: 'What colour?', where: `${file}:4` },
    ]);
  });

  it('a bad line names file:line and the field', () => {
    const bad: [string, RegExp][] = [
      ['{"id": "a", "image": "a.png"', /^f\.jsonl:7: not JSON/],
      ['[1, 2]', /^f\.jsonl:7: expected an object .* got an array/],
      ['{"image": "a.png"}', /^f\.jsonl:7: "id" is missing/],
      ['{"id": 12, "image": "a.png"}', /^f\.jsonl:7: "id" must be a string: write "12", in quotes/],
      ['{"id": "", "image": "a.png"}', /^f\.jsonl:7: "id" must be a non-empty string, got ""/],
      ['{"id": "a"}', /^f\.jsonl:7: "image" \(a path\) or "images" \(an array of paths\) is missing/],
      ['{"id": "a", "image": "a.png", "images": ["b.png"]}', /^f\.jsonl:7: give "image" or "images", not both/],
      ['{"id": "a", "image": 3}', /^f\.jsonl:7: "image" must be a non-empty string \(a path\), got number 3/],
      ['{"id": "a", "images": []}', /^f\.jsonl:7: "images" must be a non-empty array of paths, got an array/],
      ['{"id": "a", "images": ["b.png", null]}', /^f\.jsonl:7: "images"\[1\] must be a non-empty string \(a path\), got null/],
      ['{"id": "a", "image": "a.png", "prompt": ""}', /^f\.jsonl:7: "prompt" must be a non-empty string/],
      ['{"id": "a", "image": "a.png", "prompt": "p", "question": "q"}', /^f\.jsonl:7: give "prompt" or "question", not both/],
      ['{"id": "a", "imgae": "a.png"}', /^f\.jsonl:7: unknown field "imgae" \(fields: id, image, images, prompt, question\)/],
    ];
    for (const [text, message] of bad) {
      assert.throws(() => parseItemLine(text, 'f.jsonl:7', '/'), (e: unknown) => e instanceof BatchInputError && message.test(e.message), text);
    }
  });

  it('planning lists every bad line and every duplicate id at once, before any work', async () => {
    const file = writeLines('bad.jsonl', [
      { id: 'a', image: 'a.png' },
      { id: 'b' },
      { id: 'a', image: 'c.png' },
      'not json',
      { id: 'd', image: 'd.png' },
    ]);
    const output = path.join(tmp, 'bad-out.jsonl');
    await assert.rejects(planBatch({ input: openInput(file), output }), (e: Error) => {
      assert.ok(e instanceof BatchInputError);
      assert.match(e.message, /^3 bad input lines, nothing done:/);
      assert.match(e.message, new RegExp(`${file}:2: "image" \\(a path\\) or "images"`));
      assert.match(e.message, new RegExp(`${file}:3: duplicate id "a" \\(first on line 1\\)`));
      assert.match(e.message, new RegExp(`${file}:4: not JSON`));
      return true;
    });
    assert.equal(fs.existsSync(output), false);
  });

  it('a folder: every image file under it, recursively, in name order, id = the relative path; other files and dot-names skipped', async () => {
    const dir = path.join(tmp, 'pics');
    for (const f of ['b.png', 'a.JPG', 'notes.txt', '.hidden.png', 'sub/c.webp', 'sub/deeper/d.gif', 'a0/z.bmp', '.git/x.png']) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), 'x');
    }
    const items = await collect(folderItems(dir));
    assert.deepEqual(items.map((i) => i.id), ['a.JPG', 'a0/z.bmp', 'b.png', 'sub/c.webp', 'sub/deeper/d.gif']);
    assert.deepEqual(items[3], {
      id: 'sub/c.webp', images: [path.join(dir, 'sub/c.webp')], single: true, sources: [path.join(dir, 'sub/c.webp')], where: path.join(dir, 'sub/c.webp'),
    });
    assert.deepEqual(openInput(dir), { kind: 'dir', dir });
    assert.throws(() => openInput(path.join(tmp, 'nope')), /--input .*nope: no such file or folder/);
  });
});

describe('--shard K/N', () => {
  it('parses K/N and refuses anything else with the syntax', () => {
    assert.deepEqual(parseShard('2/4'), { index: 2, count: 4 });
    assert.deepEqual(parseShard(' 1 / 1 '), { index: 1, count: 1 });
    for (const bad of ['0/4', '5/4', '2', '2/0', 'a/b', '1.5/4', '-1/4', '']) {
      assert.throws(() => parseShard(bad), /--shard must be K\/N with whole numbers 1 ≤ K ≤ N/, bad);
    }
  });

  it('the shards\' union is the input exactly once, and membership does not depend on the input order', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `img-${i}`);
    const forward = writeLines('shard-a.jsonl', ids.map((id) => ({ id, image: `${id}.png` })));
    const backward = writeLines('shard-b.jsonl', [...ids].reverse().map((id) => ({ id, image: `${id}.png` })));
    const N = 3;
    const seen = new Map<string, number>();
    for (let k = 1; k <= N; k++) {
      const shard = { index: k, count: N };
      const a = await planBatch({ input: openInput(forward), output: path.join(tmp, `none-${k}.jsonl`), shard });
      const b = await planBatch({ input: openInput(backward), output: path.join(tmp, `none-${k}.jsonl`), shard });
      const aIds = (await collect(a.items())).map((i) => i.id);
      const bIds = (await collect(b.items())).map((i) => i.id);
      assert.deepEqual([...aIds].sort(), [...bIds].sort(), `shard ${k}`);
      assert.equal(a.inShard, aIds.length);
      assert.equal(a.total, 200);
      assert.ok(aIds.length > 40, `shard ${k} holds ${aIds.length} of 200`);
      for (const id of aIds) seen.set(id, (seen.get(id) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), [...ids].sort());
    assert.ok([...seen.values()].every((n) => n === 1));
    // A fixed value: the hash is SHA-256's first four bytes, the same on every machine.
    assert.equal(shardOf('img-0', 1000), 0xdbc855a6 % 1000); // sha256("img-0") = dbc855a6…
    assert.equal(inShard('anything', undefined), true);
  });
});

describe('batch progress', () => {
  it('a line per 5% (or per lineEveryMs) without a terminal, with the rate and ETA; a bar redrawn in place on one', () => {
    let t = 0;
    const lines: string[] = [];
    const p = batchProgress(40, { stream: { write: (s) => lines.push(s) }, now: () => t, lineEveryMs: 1e9 });
    for (let i = 0; i < 40; i++) {
      t += 3000;
      p.item(i === 5);
    }
    p.finish();
    assert.equal(lines.length, 21); // the first item, each 5% (2 items) up to 38, and the last
    assert.equal(lines[0], 'batch: 1/40 (2%) · 20.0 items/min · ETA 1m 57s\n');
    assert.equal(lines.at(-1), 'batch: 40/40 (100%) · 20.0 items/min · took 2m 00s · 1 failed\n');
    const tty: string[] = [];
    t = 0;
    const bar = batchProgress(4, { stream: { write: (s) => tty.push(s), isTTY: true }, now: () => t });
    for (let i = 0; i < 4; i++) {
      t += 1000;
      bar.item(false);
    }
    bar.finish();
    assert.match(tty[0]!, /^\r\[\.{24}\] 0\/4 \(0%\)/);
    assert.match(tty.at(-1)!, /^\r\[#{24}\] 4\/4 \(100%\) · 60\.0 items\/min · took 4s\x1b\[K\n$/);
    assert.equal(formatDuration(4000 * 1000), '1h 06m');
  });
});
