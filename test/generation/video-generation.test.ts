// Video in requests reaches the model (tiny-smolvlm2, the SmolVLM2 layout): generate's first token is the
// argmax of a plain forward pass over the processor's inputs, other frames change the logits, a chat with
// a video keeps its cache across turns and answers as a fresh run would, and no tensor is left behind.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Jimp } from 'jimp';
import { tf } from '../../src/backend/index.ts';
import { Vlm } from '../../src/engine.ts';
import type { Idefics3Model } from '../../src/models/idefics3/model.ts';
import type { ProcessedInputs } from '../../src/processing/processor.ts';
import { fixture } from '../helpers/paths.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-video-gen-'));
const IMG = fixture('tiny-smolvlm2', 'golden', 'inputs', 'wide_150x100.png');
const GREEDY = { maxNewTokens: 6, doSample: false, eosTokenIds: [] };

async function frames(name: string, n: number, seed: number): Promise<string> {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  for (let k = 0; k < n; k++) {
    const img = new Jimp({ width: 48, height: 32, color: 0x000000ff });
    for (let x = 0; x < 48; x++) for (let y = 0; y < 32; y++) {
      const v = (seed * 37 + k * 50 + x * 5 + y * 3) % 256;
      img.setPixelColor(((v << 24) | ((x * 5) << 16) | ((y * 7) << 8) | 0xff) >>> 0, x, y);
    }
    fs.writeFileSync(path.join(dir, `f${k}.png`), await img.getBuffer('image/png'));
  }
  return dir;
}

const videoTurn = (video: string, text: string) => ({ role: 'user', content: [{ type: 'video', video }, { type: 'text', text }] });

/** Logits at the last prompt position of a plain forward pass over the processor's inputs. */
function lastLogits(vlm: Vlm, p: ProcessedInputs): Float32Array {
  const model = vlm.model as Idefics3Model;
  const [first] = p.input_ids;
  assert.ok(first, 'one prompt');
  const [B, T] = [1, first.length];
  const [, n, , h, w] = p.pixelShape!;
  assert.ok(n !== undefined && h !== undefined && w !== undefined, `5-D pixel_values, got [${p.pixelShape}]`);
  const ids = tf.tensor2d(p.input_ids.flat(), [B, T], 'int32');
  const pixels = tf.tensor(p.pixel_values!, p.pixelShape!, 'float32');
  const mask = tf.tensor(p.pixel_attention_mask!, [1, n, h, w], 'bool');
  try {
    const { logits } = model.forward({ input_ids: ids, pixel_values: pixels, pixel_attention_mask: mask }, { lastOnly: true });
    const out = logits.dataSync() as Float32Array;
    logits.dispose();
    return out;
  } finally {
    tf.dispose([ids, pixels, mask]);
  }
}

const argmax = (a: Float32Array) => a.reduce((best, v, i) => (v > a[best]! ? i : best), 0);

describe('video through the engine (tiny-smolvlm2)', () => {
  let vlm: Vlm;
  let clipA: string;
  let clipB: string;
  before(async () => {
    vlm = await Vlm.load(fixture('tiny-smolvlm2'));
    clipA = await frames('a', 4, 1);
    clipB = await frames('b', 4, 2);
  });
  after(() => {
    vlm.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('generate feeds the frames: its first token is the argmax of a forward pass, and other frames give other logits', async () => {
    const request = { messages: [videoTurn(clipA, 'What happens?')] };
    const inputs = await vlm.prepare(request);
    assert.equal(inputs.input_ids[0]?.filter((id) => id === vlm.processor.imageTokenId).length, 4 * 16, '4 frames × 16 image tokens');
    const out = await vlm.generate(request, GREEDY);
    assert.deepEqual(out.input_ids, inputs.input_ids[0]);
    const logitsA = lastLogits(vlm, inputs);
    assert.equal(out.generatedIds[0], argmax(logitsA));
    const logitsB = lastLogits(vlm, await vlm.prepare({ messages: [videoTurn(clipB, 'What happens?')] }));
    const maxDiff = logitsA.reduce((m, v, i) => Math.max(m, Math.abs(v - logitsB[i]!)), 0);
    assert.ok(maxDiff > 1e-3, `frames change the logits (max |Δ| ${maxDiff})`);
  });

  it('a chat with a video keeps its cache and answers as a fresh run; a video after an image turn re-renders the history', async () => {
    const chat = vlm.conversation();
    const first = await chat.say([{ type: 'video', video: clipA }, { type: 'text', text: 'What happens?' }], GREEDY);
    const second = await chat.say('And then?', GREEDY);
    assert.ok(chat.lastPrefillTokens < second.input_ids.length / 4, `prefilled ${chat.lastPrefillTokens} of ${second.input_ids.length}`);
    const fresh = await vlm.generate({ messages: [
      videoTurn(clipA, 'What happens?'),
      { role: 'assistant', content: [{ type: 'text', text: first.text }] },
      { role: 'user', content: [{ type: 'text', text: 'And then?' }] },
    ] }, GREEDY);
    assert.deepEqual(second.input_ids, fresh.input_ids);
    assert.deepEqual(second.generatedIds, fresh.generatedIds);
    chat.dispose();

    const mixed = vlm.conversation();
    const imageAnswer = await mixed.say([{ type: 'image', image: IMG }, { type: 'text', text: 'What is this?' }], GREEDY);
    const videoAnswer = await mixed.say([{ type: 'video', video: clipB }, { type: 'text', text: 'And this?' }], GREEDY);
    const freshMixed = await vlm.generate({ messages: [
      { role: 'user', content: [{ type: 'image', image: IMG }, { type: 'text', text: 'What is this?' }] },
      { role: 'assistant', content: [{ type: 'text', text: imageAnswer.text }] },
      videoTurn(clipB, 'And this?'),
    ] }, GREEDY);
    assert.deepEqual(videoAnswer.input_ids, freshMixed.input_ids);
    assert.deepEqual(videoAnswer.generatedIds, freshMixed.generatedIds);
    mixed.dispose();
  });

  it('leaves tf.memory().numTensors flat', async () => {
    const request = { messages: [videoTurn(clipA, 'Hi')] };
    await vlm.generate(request, { maxNewTokens: 2 });
    const start = tf.memory().numTensors;
    await vlm.generate(request, { maxNewTokens: 2 });
    const chat = vlm.conversation();
    await chat.say([{ type: 'video', video: clipB }, { type: 'text', text: 'Hi' }], { maxNewTokens: 2 });
    await chat.say('Again', { maxNewTokens: 2 });
    chat.dispose();
    assert.equal(tf.memory().numTensors, start);
  });
});
