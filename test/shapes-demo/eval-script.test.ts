// `npm run demo:eval` (examples/shapes-demo/eval.ts) end to end on the shipped demo model, with a
// handful of fresh images.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../examples/shapes-demo/eval.ts', import.meta.url));
const DEMO = fileURLToPath(new URL('../../weights/tfvlm-demo', import.meta.url));
const demoEval = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { encoding: 'utf8' });

describe('npm run demo:eval', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-eval-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('scores fresh captions and questions, per task and per number of shapes', () => {
    const data = path.join(tmp, 'data');
    const r = demoEval(['--model', DEMO, '--n-images', '6', '--n-questions', '9', '--seed', '7', '--data-dir', data, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.captions.total, 6);
    assert.equal(out.questions.total, 9);
    const scenes = fs.readFileSync(path.join(data, 'scenes.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const perShapes = Object.values(out.byTaskAndShapes.caption as Record<string, { total: number }>);
    assert.equal(perShapes.reduce((a, s) => a + s.total, 0), 6);
    for (const [n, s] of Object.entries(out.byTaskAndShapes.caption as Record<string, { total: number }>)) {
      assert.equal(s.total, scenes.filter((sc) => sc.shapes.length === Number(n)).length);
    }
    const text = demoEval(['--model', DEMO, '--n-images', '2', '--n-questions', '2', '--seed', '7']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^captions\s+\d\/2 = [\d.]+% exact\nquestions\s+\d\/2/);
    assert.match(text.stdout, /by shapes in the image:/);
  });

  it('names a bad argument', () => {
    const r = demoEval(['pictures', '--model', DEMO]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /Unexpected argument 'pictures'/);
    const n = demoEval(['--model', DEMO, '--n-images', '0']);
    assert.match(n.stderr, /--n-images must be at least 1/);
  });
});
