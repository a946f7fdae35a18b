// The CLI on broken model folders and inputs: exit code 1, the error on stderr naming the file and
// field, and no stack trace.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixture } from '../helpers/paths.ts';
import { BrokenModel, escaped } from './broken-model.ts';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const IMG = fixture('tiny-smolvlm', 'golden', 'inputs', 'small_64x48.png');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function tfvlm(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, TFVLM_MODEL: '', HF_HUB_OFFLINE: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function assertCleanFailure(r: Run, ...patterns: RegExp[]): void {
  assert.equal(r.status, 1, `exit code ${r.status}; stderr: ${r.stderr}`);
  for (const re of patterns) assert.match(r.stderr, re);
  assert.doesNotMatch(r.stderr, /^\s+at .+:\d+:\d+\)?$/m, `stack trace on stderr:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /TypeError|RangeError|ReferenceError/);
}

describe('tfvlm CLI on hostile inputs', () => {
  const folders: BrokenModel[] = [];
  let tmp: string;
  const broken = (setup: (m: BrokenModel) => void): BrokenModel => {
    const m = new BrokenModel();
    setup(m);
    folders.push(m);
    return m;
  };
  before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-cli-hostile-')); });
  after(() => {
    for (const m of folders) m.remove();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  // [what, model folder setup, extra args, patterns]; run two at a time (CI has 2 cores).
  const CASES: Array<[string, (m: BrokenModel) => void, RegExp[]]> = [
    ['config.json not JSON', (m) => m.set('config.json', '{"model_type": '), [/config\.json: cannot read config/]],
    ['heads not dividing hidden_size', (m) => m.editJson('config.json', (c) => { c.text_config.num_attention_heads = 3; c.text_config.num_key_value_heads = 3; delete c.text_config.head_dim; }),
      [/config\.json: text_config\.num_attention_heads must divide hidden_size \(64\)/]],
    ['truncated model.safetensors', (m) => m.set('model.safetensors', fs.readFileSync(m.original('model.safetensors')).subarray(0, 100_000)),
      [/model\.safetensors: tensor '[^']+': data_offsets .* run past the data area/]],
    ['weights that disagree with the config', (m) => m.editJson('config.json', (c) => { c.text_config.intermediate_size = 96; }),
      [/weights in .*model\.safetensors do not match the config/, /wrong shape \(6\)/, /mlp\.gate_proj\.weight: checkpoint \[128, 64\], expected \[96, 64\]/]],
    ['malformed tokenizer.json', (m) => m.set('tokenizer.json', '{"model": '), [/tokenizer\.json: not valid JSON/]],
  ];

  it('describe --model on broken folders: exit 1, message naming file and field, no stack trace', { timeout: 180_000 }, async () => {
    const cases = CASES.map(([what, setup, patterns]) => ({ what, patterns, model: broken(setup) }));
    for (let i = 0; i < cases.length; i += 2) {
      const batch = cases.slice(i, i + 2);
      const runs = await Promise.all(batch.map(async (c) => ({ ...c, r: await tfvlm(['describe', IMG, '--model', c.model.dir, '--max-new-tokens', '2']) })));
      for (const { what, patterns, model, r } of runs) {
        const dir = new RegExp(escaped(model.dir));
        try {
          assertCleanFailure(r, dir, ...patterns);
        } catch (e) {
          (e as Error).message = `${what}: ${(e as Error).message}`;
          throw e;
        }
      }
    }
  });

  it('bad images and requests: exit 1, message naming the input', { timeout: 120_000 }, async () => {
    const truncated = path.join(tmp, 'truncated.png');
    fs.writeFileSync(truncated, fs.readFileSync(IMG).subarray(0, 60));
    const messages = path.join(tmp, 'messages.json');
    fs.writeFileSync(messages, JSON.stringify([{ role: 'user', content: 5 }]));
    const model = fixture('tiny-smolvlm');
    const [a, c] = await Promise.all([
      tfvlm(['describe', truncated, '--model', model]),
      tfvlm(['chat', '--messages', messages, '--model', model]),
    ]);
    const d = await tfvlm(['ask', IMG, '--question', 'word '.repeat(9000), '--model', model, '--max-new-tokens', '2']);
    assertCleanFailure(a, new RegExp(`${escaped(truncated)}: truncated or corrupt PNG`));
    assertCleanFailure(c, new RegExp(`--messages ${escaped(messages)}: messages\\[0\\]\\.content: expected a string or a list of parts`));
    assertCleanFailure(d, /the prompt has \d+ tokens but the context window \(max_position_embeddings\) is 8192/);
  });
});
