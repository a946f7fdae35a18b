// The library API end to end on the tiny SmolVLM: streaming equals one-shot, stop strings, seeded
// sampling, multi-turn chat with a kept KV cache equal to re-prefilling, and no leaks.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fixture } from '../helpers/paths.ts';
import { tf } from '../../src/backend/index.ts';
import { Vlm } from '../../src/engine.ts';

const DIR = fixture('tiny-smolvlm');
const IMG = fixture('tiny-smolvlm', 'golden', 'inputs', 'wide_150x100.png');
const cases = JSON.parse(fs.readFileSync(fixture('tiny-smolvlm', 'golden', 'cases.json'), 'utf8')).cases;
const ask = (text: string) => ({ messages: [{ role: 'user', content: [{ type: 'image', image: IMG }, { type: 'text', text }] }] });

describe('Vlm engine', () => {
  let vlm: Vlm;
  before(async () => { vlm = await Vlm.load(DIR); });
  after(() => vlm.dispose());

  it('reproduces the golden greedy tokens from the chat request', async () => {
    const c = cases.find((x: { name: string }) => x.name === 'split_single');
    const out = await vlm.generate(ask('Describe this image.'), { maxNewTokens: 16, doSample: false, eosTokenIds: [] });
    assert.equal(out.prompt, c.prompt);
    assert.deepEqual(out.input_ids, c.input_ids);
    assert.deepEqual(out.generatedIds, c.generate.new_token_ids);
  });

  it('streams deltas that add up to the one-shot text', async () => {
    const it = vlm.stream(ask('Describe this image.'), { maxNewTokens: 12, doSample: false });
    let streamed = '';
    let r = await it.next();
    while (!r.done) { streamed += r.value; r = await it.next(); }
    assert.equal(streamed, r.value.text);
    const once = await vlm.generate(ask('Describe this image.'), { maxNewTokens: 12, doSample: false });
    assert.equal(once.text, streamed);
  });

  it('seeded sampling is reproducible and seeds differ', async () => {
    const opts = { maxNewTokens: 12, doSample: true, temperature: 1.5, topK: 0, eosTokenIds: [] };
    const a = await vlm.generate(ask('What is this?'), { ...opts, seed: 1 });
    const b = await vlm.generate(ask('What is this?'), { ...opts, seed: 1 });
    const c = await vlm.generate(ask('What is this?'), { ...opts, seed: 2 });
    assert.deepEqual(a.generatedIds, b.generatedIds);
    assert.notDeepEqual(a.generatedIds, c.generatedIds);
  });

  it('stops at a stop string and leaves it out', async () => {
    const full = await vlm.generate(ask('Describe this image.'), { maxNewTokens: 16, doSample: false, eosTokenIds: [] });
    const stop = full.text.slice(3, 5);
    assert.ok(stop.length === 2);
    const cut = await vlm.generate(ask('Describe this image.'), { maxNewTokens: 16, doSample: false, eosTokenIds: [], stopStrings: [stop] });
    assert.equal(cut.stopReason, 'stop_string');
    assert.equal(cut.text, full.text.slice(0, full.text.indexOf(stop)));
  });

  it('a conversation prefills only the new turn and answers as a fresh run would', async () => {
    const chat = vlm.conversation({ system: 'You describe images.' });
    const first = await chat.say([{ type: 'image', image: IMG }, { type: 'text', text: 'What is this?' }], { maxNewTokens: 6, doSample: false, eosTokenIds: [] });
    const firstPrefill = chat.lastPrefillTokens;
    const second = await chat.say('And the colours?', { maxNewTokens: 6, doSample: false, eosTokenIds: [] });
    assert.ok(chat.lastPrefillTokens < second.input_ids.length / 2, `prefilled ${chat.lastPrefillTokens} of ${second.input_ids.length}`);
    assert.equal(firstPrefill, first.input_ids.length);
    const fresh = await vlm.generate({
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'You describe images.' }] },
        { role: 'user', content: [{ type: 'image', image: IMG }, { type: 'text', text: 'What is this?' }] },
        { role: 'assistant', content: [{ type: 'text', text: first.text }] },
        { role: 'user', content: [{ type: 'text', text: 'And the colours?' }] },
      ],
    }, { maxNewTokens: 6, doSample: false, eosTokenIds: [] });
    assert.deepEqual(second.input_ids, fresh.input_ids);
    assert.deepEqual(second.generatedIds, fresh.generatedIds);
    chat.dispose();
  });

  it('leaves tf.memory().numTensors flat over repeated generations', async () => {
    await vlm.generate(ask('Hi'), { maxNewTokens: 3 });
    const start = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) await vlm.generate(ask('Hi'), { maxNewTokens: 3 });
    const chat = vlm.conversation();
    await chat.say('Hello', { maxNewTokens: 2 });
    await chat.say('Again', { maxNewTokens: 2 });
    chat.dispose();
    assert.equal(tf.memory().numTensors, start);
  });
});

describe('Vlm.load() with no model', () => {
  it('loads the shipped demo model (DEMO_MODEL_DIR, exported) and captions with it', async () => {
    const { DEMO_MODEL_DIR } = await import('../../src/index.ts');
    assert.ok(fs.existsSync(`${DEMO_MODEL_DIR}/config.json`), DEMO_MODEL_DIR);
    const before = tf.memory().numTensors;
    const demo = await Vlm.load();
    try {
      assert.equal(demo.dir, path.resolve(DEMO_MODEL_DIR));
      const out = await demo.generate({ messages: [{ role: 'user', content: [{ type: 'image', image: 'examples/assets/shapes.png' }, { type: 'text', text: 'Describe this image.' }] }] }, { maxNewTokens: 40 });
      assert.match(out.text, /circle|triangle|square/);
    } finally {
      demo.dispose();
    }
    assert.equal(tf.memory().numTensors, before);
  });
});
