// `tfvlm batch` end to end on the tiny SmolVLM fixture: a JSONL run with a failing item, a rerun that
// skips everything, bad flags and inputs refused before the model loads, and a run killed with
// SIGKILL after its first line that a rerun completes with every item exactly once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { batchCommand } from '../../src/cli/batch.ts';
import { parseCommandArgs } from '../../src/cli/command.ts';
import { fixture, image } from '../helpers/paths.ts';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const MODEL = fixture('tiny-smolvlm');
const FLAGS = ['--model', MODEL, '--greedy', '--max-new-tokens', '4', '--image-splitting', 'off'];
const PICTURES: [string, string][] = [
  ['small.png', fixture('tiny-smolvlm', 'golden', 'inputs', 'small_64x48.png')],
  ['wide.png', fixture('tiny-smolvlm', 'golden', 'inputs', 'wide_150x100.png')],
  ['tall.png', fixture('tiny-smolvlm', 'golden', 'inputs', 'tall_80x120.png')],
  ['horse.png', image('horse.png')],
];

const tfvlm = (args: string[]) => spawnSync(process.execPath, [BIN, 'batch', ...args], { encoding: 'utf8', env: { ...process.env, TFVLM_MODEL: '' } });
const readOutput = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

let tmp: string;
/** The text each picture got in the first run (same flags, default prompt). */
const textOf = new Map<string, string>();

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-batch-cli-'));
  fs.mkdirSync(path.join(tmp, 'images'));
  for (const [name, from] of PICTURES) fs.copyFileSync(from, path.join(tmp, 'images', name));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('tfvlm batch', () => {
  it('answers every JSONL item in one line, writes a failing item as an error with exit status 0, and a rerun skips them all', () => {
    const input = path.join(tmp, 'items.jsonl');
    const items = [...PICTURES.map(([name]) => ({ id: name, image: `images/${name}` })), { id: 'missing', image: 'images/nope.png' }];
    fs.writeFileSync(input, items.map((i) => JSON.stringify(i)).join('\n') + '\n');
    const output = path.join(tmp, 'out', 'results.jsonl');
    const r = tfvlm(['--input', input, '--output', output, ...FLAGS, '--max-batch', '4']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /tfvlm batch: 5 items in .*items\.jsonl; 5 to do/);
    assert.match(r.stderr, /batch: 5\/5 \(100%\) · [\d.]+ items\/min · took \d+s · 1 failed/);
    assert.match(r.stderr, /tfvlm batch: 5 items written to .*results\.jsonl in \d+s \([\d.]+ items\/min\); 1 failed \(their lines hold the error; --retry-errors redoes them\)/);
    const lines = readOutput(output);
    assert.deepEqual(lines.map((l) => l.id).sort(), items.map((i) => i.id).sort());
    for (const line of lines) {
      if (line.id === 'missing') {
        assert.deepEqual(Object.keys(line), ['id', 'image', 'error']);
        assert.match(line.error as string, /nope\.png: no such file/);
      } else {
        assert.deepEqual(Object.keys(line), ['id', 'image', 'text', 'generated_tokens', 'stop_reason', 'timings']);
        assert.equal(line.image, `images/${line.id as string}`);
        textOf.set(line.id as string, line.text as string);
      }
    }
    const again = tfvlm(['--input', input, '--output', output, ...FLAGS]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /skipped 5 already in .*results\.jsonl \(1 of them error lines; --retry-errors redoes those\)/);
    assert.match(again.stderr, /nothing to do: every item has a line in/);
    assert.equal(readOutput(output).length, 5);
  });

  it('refuses bad flags and bad input lines before loading the model', async () => {
    const input = path.join(tmp, 'dup.jsonl');
    fs.writeFileSync(input, '{"id": "a", "image": "a.png"}\n{"id": "a", "image": "b.png"}\n');
    const output = path.join(tmp, 'dup-out.jsonl');
    const run = (...args: string[]) => batchCommand.run(parseCommandArgs(batchCommand, args));
    const base = ['--input', input, '--output', output, '--model', path.join(tmp, 'no-model-here')];
    await assert.rejects(run(...base), new RegExp(`1 bad input line, nothing done:\\n${input}:2: duplicate id "a" \\(first on line 1\\)`));
    await assert.rejects(run(...base, '--shard', '3/2'), /--shard must be K\/N with whole numbers 1 ≤ K ≤ N .* got '3\/2'/);
    await assert.rejects(run(...base, '--prompt', 'p', '--question', 'q'), /give --prompt or --question, not both/);
    await assert.rejects(run(...base, '--max-batch', '0'), /--max-batch must be a whole number ≥ 1, got '0'/);
    await assert.rejects(run('--output', output), /--input is required/);
    assert.equal(fs.existsSync(output), false);
  });

  it('a run killed with SIGKILL after its first line, then rerun: every item of the folder exactly once, texts as in a clean run', async (t) => {
    if (textOf.size === 0) return t.skip('needs the first test\'s texts');
    const dir = path.join(tmp, 'many');
    const ids: string[] = [];
    for (let i = 0; i < 24; i++) {
      const [name] = PICTURES[i % PICTURES.length]!;
      const id = `${String(i).padStart(2, '0')}-${name}`;
      fs.mkdirSync(path.join(dir, i % 2 ? 'odd' : 'even'), { recursive: true });
      const rel = `${i % 2 ? 'odd' : 'even'}/${id}`;
      fs.copyFileSync(path.join(tmp, 'images', name), path.join(dir, rel));
      ids.push(rel);
    }
    const output = path.join(tmp, 'crash.jsonl');
    const child = spawn(process.execPath, [BIN, 'batch', '--input', dir, '--output', output, ...FLAGS, '--max-batch', '2'], {
      stdio: 'ignore', env: { ...process.env, TFVLM_MODEL: '' },
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let linesAtKill = -1;
    for (;;) {
      if (child.exitCode !== null) break;
      if (fs.existsSync(output) && fs.readFileSync(output, 'utf8').includes('\n')) {
        child.kill('SIGKILL');
        linesAtKill = readOutput(output).length;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await exited;
    assert.ok(linesAtKill >= 1 && linesAtKill < ids.length, `killed after ${linesAtKill} of ${ids.length} lines`);
    t.diagnostic(`killed after ${linesAtKill} of ${ids.length} lines`);
    const rerun = tfvlm(['--input', dir, '--output', output, ...FLAGS, '--max-batch', '2', '-q']);
    assert.equal(rerun.status, 0, rerun.stderr);
    const lines = readOutput(output);
    assert.deepEqual(lines.map((l) => l.id).sort(), [...ids].sort());
    for (const line of lines) {
      assert.equal(line.image, path.join(dir, line.id as string));
      assert.equal(line.text, textOf.get((line.id as string).slice((line.id as string).indexOf('/') + 4)), line.id as string);
    }
  });
});
