// A training checkpoint is complete or absent, whenever the process dies: a child writes checkpoints
// without end and is killed with SIGKILL at random moments; every checkpoint-N folder left must hold
// every file and resume, and what a killed write left behind (temporaries) is swept. (Before, a
// kill -9 could leave checkpoint-N/ holding only a *.tmp-* file, or a trainer_state.json cut short.)
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../../src/backend/index.ts';
import { sweepStaleTemporaries, writeFileAtomic, writeFolderAtomic } from '../../src/io/atomic-write.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { OPTIMIZER_STATE_NAME, TRAINER_STATE_NAME, Trainer } from '../../src/train/trainer.ts';
import { loadTiny, tinyConfig, tinySetup, type TinySetup } from './tiny.ts';

const CHILD = fileURLToPath(new URL('./checkpoint-writer-child.ts', import.meta.url));

/** Starts the writer, waits until it has written `after` checkpoints plus `extraMs`, then SIGKILLs it. */
function writeThenKill(root: string, out: string, after: number, extraMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, root, out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let written = 0;
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c; });
    child.stdout.on('data', (c: Buffer) => {
      written += String(c).split('\n').filter(Boolean).length;
      if (written >= after) setTimeout(() => child.kill('SIGKILL'), extraMs);
    });
    child.on('close', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited ${code}: ${stderr}`))));
  });
}

function checkComplete(dir: string): void {
  for (const name of ['config.json', 'model.safetensors', OPTIMIZER_STATE_NAME, TRAINER_STATE_NAME, 'tokenizer.json']) {
    assert.ok(fs.existsSync(path.join(dir, name)), `${dir} lacks ${name}`);
  }
  JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, TRAINER_STATE_NAME), 'utf8')).global_step, 1);
  for (const name of ['model.safetensors', OPTIMIZER_STATE_NAME]) {
    const f = SafetensorsFile.open(path.join(dir, name));
    for (const key of f.keys()) f.readArray(key);
    f.close();
  }
}

describe('training checkpoints survive kill -9', () => {
  let s: TinySetup;
  before(async () => {
    await initBackend();
    s = await tinySetup();
  });
  after(() => fs.rmSync(s.root, { recursive: true, force: true }));

  it('every checkpoint-N folder a killed writer leaves is complete and resumes; its temporaries are swept', async () => {
    const out = path.join(s.root, 'out');
    let temporaries = 0;
    for (const [k, extraMs] of [[1, 0], [2, 7], [1, 23], [3, 41], [2, 13]].entries()) {
      await writeThenKill(s.root, out, k + 1, extraMs[1] ?? 0);
      temporaries += fs.readdirSync(out).filter((n) => n.includes('.tmp-')).length;
      const swept = sweepStaleTemporaries(out);
      assert.deepEqual(fs.readdirSync(out).filter((n) => n.includes('.tmp-')), [], `left after sweeping ${swept}`);
      for (const name of fs.readdirSync(out)) checkComplete(path.join(out, name));
    }
    assert.ok(temporaries > 0, 'at least one kill landed in the middle of a write');
    const latest = fs.readdirSync(out).sort((a, b) => Number(b.split('-')[1]) - Number(a.split('-')[1]))[0];
    assert.ok(latest, 'a checkpoint folder');
    const model = await loadTiny(s);
    const trainer = new Trainer(model, s.modelDir, s.examples, tinyConfig({ maxSteps: 1000 }), 0);
    trainer.resume(path.join(out, latest));
    assert.equal(trainer.step, 1);
    trainer.dispose();
    model.dispose();
  });

  it('writeFolderAtomic replaces a folder whole, and leaves it as it was when filling fails', () => {
    const dir = path.join(s.root, 'folder');
    writeFolderAtomic(dir, (tmp) => fs.writeFileSync(path.join(tmp, 'a.txt'), 'one'));
    writeFolderAtomic(dir, (tmp) => fs.writeFileSync(path.join(tmp, 'b.txt'), 'two'));
    assert.deepEqual(fs.readdirSync(dir), ['b.txt']);
    assert.throws(() => writeFolderAtomic(dir, (tmp) => {
      fs.writeFileSync(path.join(tmp, 'c.txt'), 'three');
      throw new Error('disk full');
    }), /disk full/);
    assert.deepEqual(fs.readdirSync(dir), ['b.txt']);
    assert.deepEqual(fs.readdirSync(s.root).filter((n) => n.includes('.tmp-')), []);
    writeFileAtomic(path.join(dir, 'b.txt'), 'four');
    assert.equal(fs.readFileSync(path.join(dir, 'b.txt'), 'utf8'), 'four');
    // Temporaries of live processes (this one) stay; those of gone ones are swept.
    fs.mkdirSync(path.join(s.root, `x.tmp-${process.pid}-1`));
    fs.mkdirSync(path.join(s.root, 'y.tmp-999999999-1'));
    assert.deepEqual(sweepStaleTemporaries(s.root), ['y.tmp-999999999-1']);
  });
});
