// Every script in examples/ runs to completion on the tiny fixture models (random weights: the
// text is gibberish, so the checks are on what each script prints around it). The scripts run
// in-process, one after another (each import with its own argv, its output collected through
// examples/common.ts `write`), which keeps the module graph and the wasm backend loaded once.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fixture } from '../helpers/paths.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const small = (f: string) => fixture('tiny-smolvlm', 'golden', 'inputs', f);
const SMOL = ['--model', fixture('tiny-smolvlm'), '--max-new-tokens', '3'];

const RUNS: Record<string, string[]> = {
  'caption-image': [...SMOL, '--image', small('small_64x48.png')],
  'ask-about-chart': SMOL,
  'chat-with-system': [...SMOL, '--image', small('small_64x48.png')],
  'compare-two-images': [...SMOL, '--first', small('small_64x48.png'), '--second', small('tall_80x120.png')],
  'describe-video': SMOL,
  'rank-captions': [...SMOL, '--image', small('small_64x48.png')],
  'rank-captions (CLIP)': ['--model', fixture('tiny-clip'), '--image', small('small_64x48.png')],
};

interface Run { code: number; stdout: string; stderr: string }

let runs = 0;

async function run(script: string, args: string[]): Promise<Run> {
  const chunks: string[] = [];
  const saved = process.argv;
  const g = globalThis as { tfvlmExampleOutput?: (s: string) => void };
  g.tfvlmExampleOutput = (s) => { chunks.push(s); };
  process.argv = [...process.argv.slice(0, 1), `${ROOT}examples/${script}.ts`, ...args];
  try {
    await import(`${pathToFileURL(`${ROOT}examples/${script}.ts`).href}?run=${runs++}`);
    return { code: 0, stdout: chunks.join(''), stderr: '' };
  } catch (e) {
    return { code: 1, stdout: chunks.join(''), stderr: String((e as Error).stack ?? e) };
  } finally {
    process.argv = saved;
    delete g.tfvlmExampleOutput;
  }
}

describe('examples/', () => {
  const results = new Map<string, Run>();
  before(async () => {
    for (const [name, args] of Object.entries(RUNS)) results.set(name, await run(name.split(' ')[0]!, args));
  });

  it('every example script is exercised here', () => {
    const scripts = fs.readdirSync(`${ROOT}examples`).filter((f) => f.endsWith('.ts') && f !== 'common.ts').map((f) => f.slice(0, -3));
    assert.deepEqual(scripts.sort(), [...new Set(Object.keys(RUNS).map((k) => k.split(' ')[0]))].sort());
  });

  const ok = (name: string) => {
    const r = results.get(name)!;
    assert.equal(r.code, 0, `${name} failed:\n${r.stderr}`);
    return r.stdout;
  };

  it('caption-image streams an answer', () => assert.ok(ok('caption-image').length > 1));
  it('ask-about-chart prints the question and an answer', () => assert.match(ok('ask-about-chart'), /^Q: Which bar is the tallest.*\nA: /));
  it('chat-with-system: three turns, later ones prefill only the new tokens', () => {
    const out = ok('chat-with-system');
    const prefills = [...out.matchAll(/prefilled (\d+) new tokens/g)].map((m) => Number(m[1]));
    assert.equal(prefills.length, 3);
    assert.ok(prefills[1]! < prefills[0]! && prefills[2]! < prefills[0]!, `cache reuse: ${prefills}`);
  });
  it('compare-two-images answers', () => assert.ok(ok('compare-two-images').length > 0));
  it('describe-video samples the GIF frames in order with timestamps', () => {
    assert.match(ok('describe-video'), /^2 frames at 0\.00s, 1\.75s of 2\.00s\n/);
  });
  it('rank-captions ranks every caption (generative and CLIP)', () => {
    for (const [name, method] of [['rank-captions', 'generative'], ['rank-captions (CLIP)', 'dual-encoder']] as const) {
      const out = ok(name);
      assert.match(out, new RegExp(`^${method} scores`));
      assert.equal(out.trim().split('\n').length, 5);
    }
  });
});
