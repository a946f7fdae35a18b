// The results file: ids read back (error lines too), a torn last line cut off, a foreign line refused,
// error lines dropped for --retry-errors, lines appended whole.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dropErrorLines, readResults, ResultsWriter } from '../../src/batch/results-file.ts';
import { openInput } from '../../src/batch/input.ts';
import { planBatch } from '../../src/batch/plan.ts';

let tmp: string;
before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-batch-results-')); });
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const A = JSON.stringify({ id: 'a', image: 'a.png', text: 'x', generated_tokens: 1 });
const B = JSON.stringify({ id: 'b', image: 'b.png', error: 'b.png: no such file' });
const C = JSON.stringify({ id: 'c', image: 'c.png', text: 'line\nbreak', generated_tokens: 2 });

describe('batch results file', () => {
  it('reads the ids and whether each is a result or an error; a missing file is empty', async () => {
    const file = path.join(tmp, 'ok.jsonl');
    fs.writeFileSync(file, `${A}\n${B}\n${C}\n`);
    const r = await readResults(file);
    assert.deepEqual([...r.done], [['a', 'ok'], ['b', 'error'], ['c', 'ok']]);
    assert.equal(r.lines, 3);
    assert.equal(r.repaired, undefined);
    assert.equal(fs.readFileSync(file, 'utf8'), `${A}\n${B}\n${C}\n`);
    assert.deepEqual(await readResults(path.join(tmp, 'missing.jsonl')), { done: new Map(), lines: 0 });
  });

  it('a torn last line (no newline, or not JSON) is cut off and its id is not done', async () => {
    for (const tail of [C.slice(0, 20), C, `${C.slice(0, 20)}\n`, '{"id": "c"}\n']) {
      const file = path.join(tmp, 'torn.jsonl');
      fs.writeFileSync(file, `${A}\n${B}\n${tail}`);
      const r = await readResults(file);
      assert.deepEqual([...r.done.keys()], ['a', 'b'], tail);
      assert.deepEqual(r.repaired, { line: 3, bytes: Buffer.byteLength(tail) });
      assert.equal(fs.readFileSync(file, 'utf8'), `${A}\n${B}\n`);
    }
  });

  it('a bad line before the last is not a crash\'s doing: refused, naming file:line, and the file left alone', async () => {
    const file = path.join(tmp, 'foreign.jsonl');
    fs.writeFileSync(file, `${A}\nsomething else\n${C}\n`);
    await assert.rejects(readResults(file), new RegExp(`${file}:2: not a result line .*fix or remove the line`));
    assert.equal(fs.readFileSync(file, 'utf8'), `${A}\nsomething else\n${C}\n`);
  });

  it('the writer appends each line whole; --retry-errors drops the error lines of the retried ids only', async () => {
    const file = path.join(tmp, 'sub', 'out.jsonl');
    const w = ResultsWriter.open(file);
    w.append(JSON.parse(A));
    w.append(JSON.parse(B));
    w.append({ id: 'z', image: 'z.png', error: 'bad' });
    w.close();
    assert.equal(fs.readFileSync(file, 'utf8'), `${A}\n${B}\n{"id":"z","image":"z.png","error":"bad"}\n`);
    assert.equal(await dropErrorLines(file, (id) => id === 'b'), 1);
    assert.equal(fs.readFileSync(file, 'utf8'), `${A}\n{"id":"z","image":"z.png","error":"bad"}\n`);
    assert.equal(await dropErrorLines(file, (id) => id === 'b'), 0);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['out.jsonl']);
  });

  it('a plan skips the ids done, error lines too unless --retry-errors, and repairs a torn tail first', async () => {
    const input = path.join(tmp, 'in.jsonl');
    fs.writeFileSync(input, ['a', 'b', 'c', 'd'].map((id) => JSON.stringify({ id, image: `${id}.png` })).join('\n'));
    const output = path.join(tmp, 'plan-out.jsonl');
    fs.writeFileSync(output, `${A}\n${B}\n${JSON.stringify({ id: 'gone', image: 'g.png', text: '' })}\n${C.slice(0, 9)}`);
    const plan = await planBatch({ input: openInput(input), output });
    assert.deepEqual({ ...plan, items: undefined }, {
      total: 4, inShard: 4, skipped: 2, skippedErrors: 1, retried: 0, todo: 2, foreign: 1, repaired: { line: 4, bytes: 9 }, items: undefined,
    });
    const todo: string[] = [];
    for await (const item of plan.items()) todo.push(item.id);
    assert.deepEqual(todo, ['c', 'd']);
    const retry = await planBatch({ input: openInput(input), output, retryErrors: true });
    assert.equal(retry.retried, 1);
    assert.equal(retry.todo, 3);
    assert.doesNotMatch(fs.readFileSync(output, 'utf8'), /"error"/);
    await assert.rejects(planBatch({ input: openInput(input), output: input }), /--input and --output are the same file/);
  });
});
