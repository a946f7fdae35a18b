// Requests with the wrong schema, image markers that do not match the images, and prompts longer
// than the context window: Vlm.prepare / Vlm.generate refuse them with a TfvlmError naming the
// message index / field, and leave no tensors.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../src/backend/index.ts';
import { Vlm, type VlmRequest } from '../../src/engine.ts';
import { fixture } from '../helpers/paths.ts';
import { rejectsCleanly } from './broken-model.ts';

const IMG = fixture('tiny-smolvlm', 'golden', 'inputs', 'small_64x48.png');
const img = { type: 'image', path: IMG };

const BAD_MESSAGES: Array<[string, unknown, RegExp]> = [
  ['messages not an array', { messages: 'hello' }, /request\.messages must be an array/],
  ['messages an object', { messages: { role: 'user', content: 'hi' } }, /request\.messages must be an array/],
  ['no messages', { messages: [] }, /messages: the list is empty/],
  ['a message that is null', { messages: [null] }, /messages\[0\]: expected an object \{role, content\}, got null/],
  ['role missing', { messages: [{ content: 'hi' }] }, /messages\[0\]\.role: expected a non-empty string/],
  ['role a number', { messages: [{ role: 5, content: 'hi' }] }, /messages\[0\]\.role: expected a non-empty string, got number 5/],
  ['content missing', { messages: [{ role: 'user' }] }, /messages\[0\]\.content: missing/],
  ['content a number', { messages: [{ role: 'user', content: 5 }] }, /messages\[0\]\.content: expected a string or a list of parts, got number 5/],
  ['content a bare part object', { messages: [{ role: 'user', content: { type: 'text', text: 'x' } }] }, /messages\[0\]\.content: expected a string or a list of parts/],
  ['part without type', { messages: [{ role: 'user', content: [{ text: 'x' }] }] }, /messages\[0\]\.content\[0\]\.type: expected "text", "image" or "video"/],
  ['text part with a number', { messages: [{ role: 'user', content: [{ type: 'text', text: 5 }] }] }, /messages\[0\]\.content\[0\]\.text: expected a string, got number 5/],
  ['image part without a source (and no images given)', { messages: [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'x' }] }] },
    /conversation 0: more \{"type":"image"\} parts than the 0 image\(s\) supplied/],
  ['image part with a number', { messages: [{ role: 'user', content: [{ type: 'image', image: 5 }] }] }, /messages\[0\]\.content\[0\]\.image: expected a file path/],
  ['image part with two sources', { messages: [{ role: 'user', content: [{ type: 'image', path: IMG, url: 'https://x/y.png' }] }] }, /messages\[0\]\.content\[0\]: give one of/],
  ['image part with a URL', { messages: [{ role: 'user', content: [{ type: 'image', url: 'https://x/y.png' }] }] }, /https:\/\/x\/y\.png is a URL; download it first/],
  ['image part naming a missing file', { messages: [{ role: 'user', content: [{ type: 'image', path: '/no/such/image.png' }] }] }, /cannot read image \/no\/such\/image\.png: no such file/],
  ['more bare image parts than images', { messages: [{ role: 'user', content: [{ type: 'image' }, { type: 'image' }] }], images: [IMG] },
    /conversation 0: more \{"type":"image"\} parts than the 1 image\(s\) supplied/],
  ['more images than bare image parts', { messages: [{ role: 'user', content: [img, { type: 'text', text: 'x' }] }], images: [IMG, IMG] },
    /conversation 0: 2 image\(s\) supplied but only 0 bare \{"type":"image"\} part\(s\) to use them/],
];

const BAD_PROMPTS: Array<[string, unknown, RegExp]> = [
  ['more <image> markers than images', { prompt: '<image><image> hi', images: [IMG] }, /the prompt has 2 <image> marker\(s\) but 1 image\(s\) were given/],
  ['fewer <image> markers than images', { prompt: '<image> hi', images: [IMG, IMG] }, /the prompt has 1 <image> marker\(s\) but 2 image\(s\) were given/],
  ['images and no marker', { prompt: 'hi', images: [IMG] }, /the prompt has 0 <image> marker\(s\) but 1 image\(s\) were given/],
  ['a marker and no images', { prompt: '<image> hi' }, /the prompt has 1 <image> marker\(s\) but 0 image\(s\) were given/],
  ['prompt a number', { prompt: 5 }, /prompt must be a string, got number/],
  ['prompt null', { prompt: null }, /prompt must be a string, got null/],
  ['images not a list', { prompt: '<image>', images: IMG }, /images must be a list of image sources/],
  ['image bytes that are no image', { prompt: '<image>', images: [new Uint8Array([1, 2, 3])] }, /cannot decode image image bytes: unknown or unsupported image format/],
  ['a bitmap whose data does not fit its size', { prompt: '<image>', images: [{ width: 2, height: 2, data: new Uint8Array(3) }] }, /decoded image: /],
  ['a directory as image', { prompt: '<image>', images: [fixture('tiny-smolvlm')] }, /it is a directory, not an image file/],
];

describe('hostile requests', () => {
  let vlm: Vlm;
  before(async () => {
    await initBackend();
    vlm = await Vlm.load(fixture('tiny-smolvlm'));
  });
  after(() => vlm.dispose());

  for (const [what, request, field] of [...BAD_MESSAGES, ...BAD_PROMPTS]) {
    it(`prepare: ${what}`, async () => {
      await rejectsCleanly(() => vlm.prepare(request as VlmRequest), field);
    });
  }

  it('generate refuses the same requests without leaving tensors', async () => {
    for (const c of [BAD_MESSAGES[5], BAD_MESSAGES[16], BAD_PROMPTS[0]]) {
      assert.ok(c, 'a bad request case');
      const [, request, field] = c;
      await rejectsCleanly(() => vlm.generate(request as VlmRequest, { maxNewTokens: 2 }), field);
    }
  });

  it('request null', async () => {
    await rejectsCleanly(() => vlm.prepare(null as unknown as VlmRequest), /request/);
  });

  it('a prompt longer than the context window (max_position_embeddings) is refused before any forward pass', async () => {
    const max = vlm.model.maxPositions;
    const long = 'hello '.repeat(max + 10);
    const before = tf.memory().numTensors;
    await rejectsCleanly(() => vlm.generate({ prompt: long }, { maxNewTokens: 2 }),
      new RegExp(`generate: the prompt has \\d+ tokens but the context window \\(max_position_embeddings\\) is ${max}`));
    await rejectsCleanly(() => vlm.generate({ messages: [{ role: 'user', content: [img, { type: 'text', text: long }] }] }, { maxNewTokens: 2 }),
      /context window \(max_position_embeddings\)/);
    assert.equal(tf.memory().numTensors, before);
  });

  it('generation options out of range', async () => {
    await rejectsCleanly(() => vlm.generate({ prompt: 'hi' }, { maxNewTokens: -1 }), /max_new_tokens must be a whole number ≥ 0, got -1/);
    await rejectsCleanly(() => vlm.generate({ prompt: 'hi' }, { temperature: Number.NaN }), /temperature must be a finite number ≥ 0/);
    await rejectsCleanly(() => vlm.generate({ prompt: '' }, { maxNewTokens: 2 }), /generate: the prompt is empty/);
  });

  it('a good request still works after all of that, and repeated failures do not grow memory', async () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await rejectsCleanly(() => vlm.prepare({ prompt: '<image><image>', images: [IMG] }), /marker/);
    const out = await vlm.generate({ prompt: 'hi <image>', images: [IMG] }, { maxNewTokens: 2 });
    assert.equal(out.input_ids.length > 0, true);
    assert.equal(tf.memory().numTensors, before);
  });
});
