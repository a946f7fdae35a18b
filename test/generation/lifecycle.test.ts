// Every way of leaving a request early: breaking out of a stream (break, return(), throw()), abandoning
// or failing a conversation turn, two turns at once, an AbortSignal (before or during generation), and
// option keys that do not exist. Each leaves tf.memory().numTensors where it was, and a conversation
// answers its next turn exactly as a fresh run of the same history.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/backend/index.ts';
import { Vlm, type GenerateCallOptions } from '../../src/engine.ts';
import { TfvlmError } from '../../src/errors.ts';
import { fixture } from '../helpers/paths.ts';

const IMG = fixture('tiny-smolvlm', 'golden', 'inputs', 'wide_150x100.png');
const LONG: GenerateCallOptions = { maxNewTokens: 12, doSample: false, eosTokenIds: [] };
const ask = (text: string) => ({ messages: [{ role: 'user', content: [{ type: 'image', image: IMG }, { type: 'text', text }] }] });
const user = (text: string, image = false) => ({ role: 'user', content: [...(image ? [{ type: 'image', image: IMG }] : []), { type: 'text', text }] });
const assistant = (text: string) => ({ role: 'assistant', content: [{ type: 'text', text }] });

describe('request lifecycles', () => {
  let vlm: Vlm;
  let tensors: number;
  before(async () => {
    vlm = await Vlm.load(fixture('tiny-smolvlm'));
    await vlm.generate(ask('warm up'), { maxNewTokens: 2 });
    tensors = tf.memory().numTensors;
  });
  after(() => vlm.dispose());

  it('leaving vlm.stream() by break, return() or throw() frees the KV cache', async () => {
    for (const leave of ['break', 'return', 'throw'] as const) {
      const it = vlm.stream(ask('Describe.'), LONG);
      const first = await it.next();
      assert.equal(first.done, false);
      if (leave === 'return') await it.return(undefined as never);
      if (leave === 'throw') await assert.rejects(it.throw(new Error('consumer gave up')), /consumer gave up/);
      if (leave === 'break') for await (const _ of it) break;
      assert.equal(tf.memory().numTensors, tensors, `after ${leave}`);
    }
  });

  it('an abandoned turn leaves the conversation as it was: the next turn answers as a fresh run', async () => {
    const chat = vlm.conversation({ system: 'Be brief.' });
    const first = await chat.say([{ type: 'image', image: IMG }, { type: 'text', text: 'What is this?' }], LONG);
    const messages = JSON.stringify(chat.messages);
    let deltas = 0;
    for await (const _ of chat.send('Tell me more, in detail.', LONG)) if (++deltas === 2) break;
    assert.equal(JSON.stringify(chat.messages), messages, 'the abandoned user message is dropped');
    const next = await chat.say('And the colours?', LONG);
    const fresh = await vlm.generate({ messages: [
      { role: 'system', content: [{ type: 'text', text: 'Be brief.' }] },
      user('What is this?', true), assistant(first.text), user('And the colours?'),
    ] }, LONG);
    assert.deepEqual(next.input_ids, fresh.input_ids);
    assert.deepEqual(next.generatedIds, fresh.generatedIds);
    chat.dispose();
    assert.equal(tf.memory().numTensors, tensors);
  });

  it('a turn that fails (a missing image) changes nothing; the conversation goes on', async () => {
    const chat = vlm.conversation();
    const first = await chat.say('Hello', LONG);
    const messages = JSON.stringify(chat.messages);
    await assert.rejects(chat.say([{ type: 'image', image: '/nonexistent/cat.png' }, { type: 'text', text: 'And this?' }], LONG), /no such file/);
    await assert.rejects(chat.say([{ type: 'image', image: IMG }, { type: 'text', text: 'x' }], { maxNewTokens: -1 }), /max_new_tokens/);
    assert.equal(JSON.stringify(chat.messages), messages);
    const next = await chat.say([{ type: 'image', image: IMG }, { type: 'text', text: 'And this?' }], LONG);
    const fresh = await vlm.generate({ messages: [user('Hello'), assistant(first.text), user('And this?', true)] }, LONG);
    assert.deepEqual(next.generatedIds, fresh.generatedIds);
    chat.dispose();
    assert.equal(tf.memory().numTensors, tensors);
  });

  it('a second turn while one is running is refused before it touches the conversation', async () => {
    const chat = vlm.conversation();
    const [a, b] = await Promise.allSettled([chat.say('One', LONG), chat.say('Two', LONG)]);
    assert.equal(a.status, 'fulfilled');
    assert.equal(b.status, 'rejected');
    assert.match(String((b as PromiseRejectedResult).reason), /a turn of this conversation is still running/);
    assert.deepEqual(chat.messages.map((m) => m.role), ['user', 'assistant']);
    const next = await chat.say('Three', LONG);
    const fresh = await vlm.generate({ messages: [user('One'), assistant((a as PromiseFulfilledResult<{ text: string }>).value.text), user('Three')] }, LONG);
    assert.deepEqual(next.generatedIds, fresh.generatedIds);
    chat.dispose();
    assert.equal(tf.memory().numTensors, tensors);
  });

  it('an already-aborted signal generates nothing; an abort mid-stream keeps the text so far', async () => {
    const none = await vlm.generate(ask('x'), { ...LONG, signal: AbortSignal.abort() });
    assert.deepEqual([none.text, none.generatedIds, none.stopReason], ['', [], 'aborted']);
    assert.equal(none.timings.prefillMs, 0, 'no prefill ran');
    const controller = new AbortController();
    const it = vlm.stream(ask('Describe.'), { ...LONG, signal: controller.signal });
    let text = '';
    let r = await it.next();
    while (!r.done) {
      text += r.value;
      controller.abort();
      r = await it.next();
    }
    assert.equal(r.value.stopReason, 'aborted');
    assert.equal(r.value.text, text);
    assert.ok(r.value.generatedIds.length >= 1 && r.value.generatedIds.length < 12, `${r.value.generatedIds.length} tokens`);
    assert.equal(tf.memory().numTensors, tensors);
  });

  it('an aborted conversation turn returns its partial answer and is not kept', async () => {
    const chat = vlm.conversation();
    const first = await chat.say('Hello', LONG);
    const controller = new AbortController();
    const stopped = chat.send('Go on.', { ...LONG, signal: controller.signal });
    await stopped.next();
    controller.abort();
    let r = await stopped.next();
    while (!r.done) r = await stopped.next();
    assert.equal(r.value.stopReason, 'aborted');
    assert.equal(chat.messages.length, 2);
    const next = await chat.say('Go on.', LONG);
    const fresh = await vlm.generate({ messages: [user('Hello'), assistant(first.text), user('Go on.')] }, LONG);
    assert.deepEqual(next.generatedIds, fresh.generatedIds);
    chat.dispose();
    assert.equal(tf.memory().numTensors, tensors);
  });

  it('option keys that do not exist are refused by name', async () => {
    await assert.rejects(vlm.generate(ask('x'), { maxTokens: 3 } as GenerateCallOptions), (e: unknown) =>
      e instanceof TfvlmError && /unknown option "maxTokens"/.test(e.message) && /maxNewTokens/.test(e.message));
    const chat = vlm.conversation();
    await assert.rejects(chat.say('x', { shouldStop: () => true } as GenerateCallOptions), /unknown option "shouldStop"/);
    assert.equal(chat.messages.length, 0);
    chat.dispose();
    assert.throws(() => vlm.conversation({ systemPrompt: 'x' } as never), /conversation: unknown option "systemPrompt" \(options: system, baseDir\)/);
    assert.equal(tf.memory().numTensors, tensors);
  });
});
