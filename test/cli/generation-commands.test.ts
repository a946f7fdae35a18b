// Each generating / inspecting command end to end on the tiny SmolVLM fixture.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixture } from '../helpers/paths.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const MODEL = fixture('tiny-smolvlm');
const cases = JSON.parse(fs.readFileSync(fixture('tiny-smolvlm', 'golden', 'cases.json'), 'utf8')).cases;
const split = cases.find((c: { name: string }) => c.name === 'split_single');
const IMG = fixture('tiny-smolvlm', 'golden', split.images[0]);

const tfvlm = (args: string[], input?: string) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', input, env: { ...process.env, TFVLM_MODEL: '' } });

describe('tfvlm generating commands', () => {
  let tmp: string;
  let messagesFile: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-cli-'));
    fs.copyFileSync(IMG, path.join(tmp, 'photo.png'));
    messagesFile = path.join(tmp, 'messages.json');
    fs.writeFileSync(messagesFile, JSON.stringify([
      { role: 'user', content: [{ type: 'image', image: 'photo.png' }, { type: 'text', text: 'Describe this image.' }] },
    ]));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('generate --json reproduces the golden greedy ids, and stdout holds only the JSON', () => {
    const r = tfvlm(['generate', '--model', MODEL, '--messages', messagesFile, '--max-new-tokens', '16', '--greedy', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(out).sort(), ['generated_ids', 'input_ids', 'prompt', 'stop_reason', 'text', 'timings']);
    assert.equal(out.prompt, split.prompt);
    assert.deepEqual(out.input_ids, split.input_ids);
    assert.deepEqual(out.generated_ids, split.generate.new_token_ids);
    assert.match(r.stderr, /load .* · vision\+embed .* · prefill \d+ tok .* · decode \d+ tok/);
  });

  it('describe and ask stream text to stdout and timings to stderr', () => {
    for (const args of [['describe', IMG], ['ask', IMG, '--question', 'What is this?']]) {
      const r = tfvlm([...args, '--model', MODEL, '--max-new-tokens', '4']);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(r.stdout.endsWith('\n'));
      assert.match(r.stderr, /decode \d+ tok/);
    }
  });

  it('describe VIDEO builds the SmolVLM2 video prompt from an animated GIF', () => {
    const gif = fileURLToPath(new URL('../../examples/assets/moving-square.gif', import.meta.url));
    const r = tfvlm(['describe', gif, '--model', MODEL, '--max-new-tokens', '3', '--json', '-q']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.match(out.prompt, /You are provided the following series of \w+ frames from a 0:00:0\d \[H:MM:SS\] video\./);
    assert.match(out.prompt, /Frame from 00:0\d:/);
  });

  it('chat --messages answers, and piped interactive chat keeps a conversation', () => {
    const once = tfvlm(['chat', '--model', MODEL, '--messages', messagesFile, '--max-new-tokens', '4', '-q']);
    assert.equal(once.status, 0, once.stderr);
    const repl = tfvlm(['chat', '--model', MODEL, '--max-new-tokens', '3'], `/image ${IMG}\nWhat is this?\nAnd now?\n/exit\n`);
    assert.equal(repl.status, 0, repl.stderr);
    assert.equal(repl.stderr.match(/prefilled \d+ new tokens/g)?.length, 2);
  });

  it('prompt --json shows the rendered and expanded prompt and ids of a golden case', () => {
    const r = tfvlm(['prompt', '--model', MODEL, '--messages', messagesFile, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.prompt, split.prompt);
    assert.equal(out.prompt_expanded, split.prompt_expanded);
    assert.deepEqual(out.input_ids, split.input_ids);
    assert.deepEqual(out.images, [{ rows: 2, cols: 3 }]);
  });

  it('preprocess dumps the golden pixel_values', () => {
    const dump = path.join(tmp, 'pixels.safetensors');
    const r = tfvlm(['preprocess', '--processor', MODEL, IMG, '--dump', dump]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /2 rows x 3 cols \+ global/);
    const mine = SafetensorsFile.open(dump);
    const golden = SafetensorsFile.open(fixture('tiny-smolvlm', 'golden', 'split_single.inputs.safetensors'));
    assert.deepEqual(mine.entry('pixel_values').shape, golden.entry('pixel_values').shape);
    assert.deepEqual(Array.from(mine.readArray('pixel_values')), Array.from(golden.readArray('pixel_values')));
    mine.close();
    golden.close();
  });

  it('bad input gives a clear error and exit code 1', () => {
    const missing = tfvlm(['describe', path.join(tmp, 'nope.png'), '--model', MODEL]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot read image .*nope\.png: no such file/);
    const noModel = tfvlm(['describe', IMG, '--model', path.join(tmp, 'no-model')]);
    assert.equal(noModel.status, 1);
    assert.match(noModel.stderr, /no-model/);
    const badFlag = tfvlm(['generate', '--model', MODEL, '--messages', messagesFile, '--top-p', 'x']);
    assert.equal(badFlag.status, 1);
    assert.match(badFlag.stderr, /--top-p must be a number/);
    for (const cmd of ['describe', 'ask', 'chat', 'generate', 'prompt', 'preprocess']) {
      assert.match(execFileSync(process.execPath, [BIN, cmd, '--help'], { encoding: 'utf8' }), new RegExp(`Usage: tfvlm ${cmd}`));
    }
  });
});
