import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { imageSourceOf, parseMessages, readMessagesFile, toTemplateMessages } from '../../src/processing/messages.ts';
import { TfvlmError } from '../../src/errors.ts';

const isTfvlm = (re: RegExp) => (e: Error) => e instanceof TfvlmError && re.test(e.message);

describe('chat messages', () => {
  it('the issue 4 example: images collected in order, paths resolved against baseDir', () => {
    const req = parseMessages([
      { role: 'system', content: [{ type: 'text', text: 'You are an assistant analyzing visual data.' }] },
      { role: 'user', content: [{ type: 'image', image: 'photo.jpg' }, { type: 'text', text: 'What is the highest value in the bar chart?' }] },
      { role: 'assistant', content: [{ type: 'text', text: '42' }] },
      { role: 'user', content: [{ type: 'image', url: 'https://example.com/a.png' }, { type: 'image', path: '/abs/b.png' }] },
    ], { baseDir: '/data/req' });
    assert.deepEqual(req.images, [
      { kind: 'path', path: '/data/req/photo.jpg' },
      { kind: 'url', url: 'https://example.com/a.png' },
      { kind: 'path', path: '/abs/b.png' },
    ]);
    assert.equal(req.messages.length, 4);
    assert.deepEqual(req.videos, []);
  });

  it('image sources: data URI, bytes, bitmap, bare {type:"image"}; string content; {messages:[...]}', () => {
    const bytes = new Uint8Array([0x89, 0x50]);
    const bitmap = { width: 2, height: 1, data: new Uint8Array(6) };
    const req = parseMessages({ messages: [
      { role: 'user', content: [{ type: 'image', image: 'data:image/png;base64,AAAA' }, { type: 'image', image: bytes }, { type: 'image', image: bitmap }, { type: 'image' }] },
      { role: 'assistant', content: 'plain string' },
      { role: 'user', content: [{ type: 'video', video: 'clip.mp4' }] },
    ] }, { baseDir: '/x' });
    assert.deepEqual(req.images.map((i) => i.kind), ['data-uri', 'bytes', 'bitmap', 'none']);
    assert.deepEqual(req.videos, [{ kind: 'path', path: '/x/clip.mp4' }]);
    const [, assistant] = req.messages;
    assert.ok(assistant, 'an assistant message');
    assert.equal(assistant.content, 'plain string');
  });

  it('template view: string content becomes one text part, binary sources are left out, extra fields kept', () => {
    const req = parseMessages([
      { role: 'user', content: [{ type: 'image', image: new Uint8Array([1]) }, { type: 'text', text: 'Hi' }], name: 'bob' },
      { role: 'assistant', content: 'Yo' },
    ]);
    assert.deepEqual(toTemplateMessages(req.messages), [
      { name: 'bob', role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'Hi' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'Yo' }] },
    ]);
    const [, assistant] = toTemplateMessages(req.messages, { stringContentAsParts: false });
    assert.ok(assistant, 'an assistant message');
    assert.equal(assistant.content, 'Yo');
  });

  it('wrong schemas name the message index and field', () => {
    assert.throws(() => parseMessages('hi'), isTfvlm(/expected a list of \{role, content\} messages, got string/));
    assert.throws(() => parseMessages([]), isTfvlm(/the list is empty/));
    assert.throws(() => parseMessages([null]), isTfvlm(/messages\[0\]: expected an object/));
    assert.throws(() => parseMessages([{ content: 'x' }]), isTfvlm(/messages\[0\]\.role: expected a non-empty string/));
    assert.throws(() => parseMessages([{ role: 'user' }]), isTfvlm(/messages\[0\]\.content: missing/));
    assert.throws(() => parseMessages([{ role: 'user', content: 3 }]), isTfvlm(/messages\[0\]\.content: expected a string or a list of parts, got number/));
    assert.throws(() => parseMessages([{ role: 'user', content: 'a' }, { role: 'user', content: [{ type: 'txt', text: 'a' }] }]),
      isTfvlm(/messages\[1\]\.content\[0\]\.type: expected "text", "image" or "video", got string "txt"/));
    assert.throws(() => parseMessages([{ role: 'user', content: [{ type: 'text', text: 5 }] }]), isTfvlm(/messages\[0\]\.content\[0\]\.text: expected a string/));
    assert.throws(() => parseMessages([{ role: 'user', content: [{ type: 'image', image: 5 }] }]), isTfvlm(/messages\[0\]\.content\[0\]\.image: expected a file path/));
    assert.throws(() => parseMessages([{ role: 'user', content: [{ type: 'image', image: 'a.png', url: 'https://x' }] }]), isTfvlm(/give one of "image", "url", "path"/));
    assert.throws(() => parseMessages([{ role: 'user', content: [{ type: 'image', url: 'a.png' }] }]), isTfvlm(/\.url: expected an http\(s\) or data: URL/));
    assert.throws(() => parseMessages([{ role: 'user', content: [{ type: 'image', image: '' }] }]), isTfvlm(/empty string/));
    assert.throws(() => parseMessages([{ role: 'user', content: [{ type: 'image', image: new Uint8Array(0) }] }]), isTfvlm(/image bytes are empty/));
    assert.throws(() => parseMessages([{ role: 'user', content: [{ type: 'image', image: { width: 2, height: 2, data: new Uint8Array(5) } }] }]), isTfvlm(/bitmap 2x2 has 5 bytes/));
  });

  it('readMessagesFile: paths relative to the JSON file folder; unreadable/malformed files are clear errors', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-msg-'));
    const file = path.join(dir, 'm.json');
    fs.writeFileSync(file, JSON.stringify([{ role: 'user', content: [{ type: 'image', image: 'sub/photo.jpg' }, { type: 'text', text: 'Hi' }] }]));
    const req = await readMessagesFile(file);
    assert.deepEqual(req.images, [{ kind: 'path', path: path.join(dir, 'sub', 'photo.jpg') }]);
    fs.writeFileSync(file, '[{"role": "user", "content": [}');
    await assert.rejects(readMessagesFile(file), isTfvlm(/m\.json: not valid JSON/));
    fs.writeFileSync(file, '[{"role": "user", "content": [{"type": "image", "image": 1}]}]');
    await assert.rejects(readMessagesFile(file), isTfvlm(/m\.json: messages\[0\]\.content\[0\]\.image/));
    await assert.rejects(readMessagesFile(path.join(dir, 'nope.json')), isTfvlm(/messages file not found/));
    await assert.rejects(readMessagesFile(dir), isTfvlm(/is a directory/));
    fs.rmSync(dir, { recursive: true });
  });

  it('imageSourceOf gives what the image loader takes; URLs and bare parts are clear errors', () => {
    const bitmap = { width: 1, height: 1, mode: 'RGB', data: new Uint8Array(3) };
    const req = parseMessages([{ role: 'user', content: [
      { type: 'image', image: '/a.png' }, { type: 'image', image: bitmap }, { type: 'image', url: 'https://x/y.png' }, { type: 'image' },
    ] }]);
    const [fromPath, fromBitmap, fromUrl, bare] = req.images;
    assert.ok(fromPath && fromBitmap && fromUrl && bare, 'four images');
    assert.equal(imageSourceOf(fromPath), '/a.png');
    assert.equal(imageSourceOf(fromBitmap), bitmap);
    assert.throws(() => imageSourceOf(fromUrl, 'images[2]'), isTfvlm(/images\[2\]: https:\/\/x\/y.png is a URL/));
    assert.throws(() => imageSourceOf(bare), isTfvlm(/bare \{"type": "image"\}/));
  });
});

