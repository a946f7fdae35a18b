// Each generating / inspecting command end to end on the tiny SmolVLM fixture.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
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
  const writeJson = (name: string, json: unknown) => {
    const file = path.join(tmp, name);
    fs.writeFileSync(file, JSON.stringify(json));
    return file;
  };

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

  it('describe VIDEO prompts an animated GIF as SmolVLM2 does', () => {
    const gif = fileURLToPath(new URL('../../examples/assets/moving-square.gif', import.meta.url));
    const r = tfvlm(['describe', gif, '--model', MODEL, '--max-new-tokens', '3', '--json', '-q']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.prompt, '<|im_start|>User: <video>Describe this video.<end_of_utterance>\nAssistant:');
    const shown = tfvlm(['prompt', '--model', MODEL, '--messages', writeJson('gif.json', [{ role: 'user', content: [{ type: 'video', video: gif }, { type: 'text', text: 'Describe this video.' }] }]), '--json']);
    assert.equal(shown.status, 0, shown.stderr);
    const p = JSON.parse(shown.stdout);
    assert.deepEqual(out.input_ids, p.input_ids);
    assert.match(p.prompt_expanded, /You are provided the following series of \w+ frames from a 0:00:0\d \[H:MM:SS\] video\./);
  });

  it('a video part in --messages reaches generate, chat and prompt (tiny-smolvlm2), mixed with an image', async () => {
    const frames = path.join(tmp, 'frames');
    fs.mkdirSync(frames);
    for (let k = 0; k < 3; k++) fs.copyFileSync(k === 1 ? IMG : fixture('tiny-smolvlm', 'golden', 'inputs', 'small_64x48.png'), path.join(frames, `f${k}.png`));
    const file = writeJson('video.json', [{ role: 'user', content: [
      { type: 'video', video: 'frames' }, { type: 'image', image: 'photo.png' }, { type: 'text', text: 'What happens?' },
    ] }]);
    const smol2 = fixture('tiny-smolvlm2');
    const shown = tfvlm(['prompt', '--model', smol2, '--messages', file]);
    assert.equal(shown.status, 0, shown.stderr);
    // 3 frames at the folder's assumed 1 fps: round(1 · 3 s) = 3 frames at 0, 1, 2 s.
    assert.match(shown.stdout, /You are provided the following series of three frames from a 0:00:03 \[H:MM:SS\] video\.\n\nFrame from 00:00:/);
    assert.match(shown.stdout, /# video: 3 frames at 0s, 1s, 2s of 3s\n/);
    assert.match(shown.stdout, /# pixel_values \[1,10,3,64,64\]/);
    const gen = tfvlm(['generate', '--model', smol2, '--messages', file, '--max-new-tokens', '4', '--greedy', '--json']);
    assert.equal(gen.status, 0, gen.stderr);
    const out = JSON.parse(gen.stdout);
    assert.equal(out.prompt, '<|im_start|>User: <video><image>What happens?<end_of_utterance>\nAssistant:');
    assert.equal(out.input_ids.filter((id: number) => id === 510).length, (3 + 7) * 16, 'three frames and seven image tiles');
    assert.equal(out.generated_ids.length, 4);
    const chat = tfvlm(['chat', '--model', smol2, '--messages', file, '--max-new-tokens', '4', '--greedy', '--json', '-q']);
    assert.equal(chat.status, 0, chat.stderr);
    assert.deepEqual(JSON.parse(chat.stdout).generated_ids, out.generated_ids);
    const repl = tfvlm(['chat', '--model', smol2, '--max-new-tokens', '2'], `/video ${frames}\nWhat happens?\nAnd then?\n/reset\n/image ${IMG}\nWhat is this?\n/exit\n`);
    assert.equal(repl.status, 0, repl.stderr);
    const prefilled = [...repl.stderr.matchAll(/prefilled (\d+) new tokens/g)].map((m) => Number(m[1]));
    assert.equal(prefilled.length, 3);
    assert.ok(prefilled[0]! > 3 * 16 && prefilled[1]! < prefilled[0]! / 4 && prefilled[2]! > 7 * 16, `prefilled ${prefilled}: video turn, a text turn from the cache, then a fresh image turn after /reset`);
    const llava = tfvlm(['generate', '--model', fixture('tiny-llava'), '--messages', file, '--max-new-tokens', '2']);
    assert.equal(llava.status, 1);
    assert.match(llava.stderr, /takes no video; video parts need a SmolVLM \/ SmolVLM2/);
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

describe('tfvlm and Ctrl-C', () => {
  it('SIGINT during generation ends it cleanly: the text so far, stop_reason aborted, exit status 130', async () => {
    const child = spawn(process.execPath, [BIN, 'generate', '--model', MODEL, '--prompt', '<|im_start|>User: Tell me a long story.<end_of_utterance>\nAssistant:',
      '--max-new-tokens', '4000', '--greedy'], { env: { ...process.env, TFVLM_MODEL: '' } });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c; });
    child.stdout.on('data', (c: Buffer) => {
      if (!stdout) child.kill('SIGINT');
      stdout += c;
    });
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(status, 130, stderr);
    assert.ok(stdout.length > 0 && stdout.endsWith('\n'), JSON.stringify(stdout));
    assert.match(stderr, /decode \d+ tok .* · aborted\]/);
    const decoded = Number(/decode (\d+) tok/.exec(stderr)![1]);
    assert.ok(decoded < 170, `stopped after ${decoded} tokens (the full answer is 175)`);
  });
});

describe('tfvlm chat (interactive) keeps going', () => {
  it('Ctrl-C stops a reply without keeping the turn, a failed turn is reported, and the chat goes on', async () => {
    const child = spawn(process.execPath, [BIN, 'chat', '--model', MODEL, '--max-new-tokens', '4000', '--greedy'], { env: { ...process.env, TFVLM_MODEL: '' } });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    child.stderr.on('data', (c: Buffer) => { stderr += c; });
    child.stdout.on('data', (c: Buffer) => {
      stdout += c;
      if (!interrupted) {
        interrupted = true;
        child.kill('SIGINT');
        child.stdin.write(`/image /nonexistent/cat.png\nWhat is this?\nHi\n/exit\n`);
      }
    });
    child.stdin.write('Tell me a long story.\n');
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(status, 0, stderr);
    assert.match(stderr, /\[stopped: this turn is not kept\]/);
    assert.match(stderr, /error: cannot read image \/nonexistent\/cat\.png: no such file \(this turn is not kept\)/);
    assert.match(stderr, /prefilled \d+ new tokens\]\n$/, 'the last turn ran');
  });
});
