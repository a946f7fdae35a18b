// OpenAI Chat Completions bodies → engine messages and generation overrides; refusals name the field.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseChatRequest } from '../../src/serve/chat-request.ts';
import { ApiError } from '../../src/serve/api-error.ts';
import { FUZZ_SEED, Mutator, fuzzRuns } from '../fuzz/mutate.ts';

const GREEDY_MODEL = { sampleByDefault: false, randomSeed: () => 1234 };
const SAMPLING_MODEL = { sampleByDefault: true, randomSeed: () => 1234 };
const user = (content: unknown) => ({ role: 'user', content });
const parse = (body: Record<string, unknown>, options = GREEDY_MODEL) => parseChatRequest({ model: 'x', messages: [user('hi')], ...body }, options);

function refuses(body: unknown, param: string | null, pattern?: RegExp) {
  assert.throws(() => parseChatRequest(body, GREEDY_MODEL), (e: unknown) => {
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.status, 400);
    assert.equal(e.type, 'invalid_request_error');
    assert.equal(e.param, param, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}
const refusesField = (body: Record<string, unknown>, param: string, pattern?: RegExp) =>
  refuses({ model: 'x', messages: [user('hi')], ...body }, param, pattern);

describe('parseChatRequest', () => {
  it('turns string and part contents into engine messages, image_url parts into ordered refs', () => {
    const p = parseChatRequest({
      model: 'anything',
      messages: [
        { role: 'developer', content: 'Be brief.' },
        user([{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } }, { type: 'text', text: 'What?' }]),
        { role: 'assistant', content: 'A cat.', refusal: null, tool_calls: [] },
        user([{ type: 'text', text: 'And?' }, { type: 'image_url', image_url: { url: 'https://x/y.png' } }]),
      ],
    }, GREEDY_MODEL);
    assert.deepEqual(p.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'image', image: 0 }, { type: 'text', text: 'What?' }] },
      { role: 'assistant', content: 'A cat.' },
      { role: 'user', content: [{ type: 'text', text: 'And?' }, { type: 'image', image: 1 }] },
    ]);
    assert.deepEqual(p.images, [
      { url: 'data:image/png;base64,AAAA', param: 'messages[1].content[0].image_url.url' },
      { url: 'https://x/y.png', param: 'messages[3].content[1].image_url.url' },
    ]);
    assert.equal(p.model, 'anything');
    assert.deepEqual(p.overrides, {});
    assert.equal(p.stream, false);
  });

  it('maps the sampling fields: temperature 0 greedy, > 0 sampled with a fresh seed unless given, absent = the model default', () => {
    assert.deepEqual(parse({ temperature: 0, max_tokens: 7 }).overrides, { doSample: false, maxNewTokens: 7 });
    assert.deepEqual(parse({ temperature: 0.5, top_p: 0.9 }).overrides, { doSample: true, temperature: 0.5, topP: 0.9, seed: 1234 });
    assert.deepEqual(parse({ temperature: 0.5, seed: -3 }).overrides, { doSample: true, temperature: 0.5, seed: -3 });
    assert.deepEqual(parse({}).overrides, {});
    assert.deepEqual(parse({}, SAMPLING_MODEL).overrides, { seed: 1234 });
    assert.deepEqual(parse({ max_completion_tokens: 5, stop: 'END', top_k: 3, min_p: 0.1, repetition_penalty: 1.2 }).overrides,
      { maxNewTokens: 5, stopStrings: ['END'], topK: 3, minP: 0.1, repetitionPenalty: 1.2 });
    assert.deepEqual(parse({ stop: ['a', 'b'], n: 1, seed: null, temperature: null }).overrides, { stopStrings: ['a', 'b'] });
    const seeds = new Set(Array.from({ length: 5 }, () => parseChatRequest({ messages: [user('x')], temperature: 1 }, { sampleByDefault: false }).overrides.seed));
    assert.equal(seeds.size, 5, 'a fresh random seed per request');
  });

  it('reads stream and stream_options.include_usage', () => {
    const p = parse({ stream: true, stream_options: { include_usage: true } });
    assert.equal(p.stream, true);
    assert.equal(p.includeUsage, true);
    refusesField({ stream_options: { include_usage: true } }, 'stream_options', /only allowed when stream is true/);
    refusesField({ stream: true, stream_options: { foo: 1 } }, 'stream_options.foo');
    refusesField({ stream: 'yes' }, 'stream');
  });

  it('accepts documented no-op fields at their defaults and refuses other values by name', () => {
    const p = parse({
      user: 'u1', logprobs: false, presence_penalty: 0, frequency_penalty: 0, response_format: { type: 'text' },
      logit_bias: {}, store: false, tools: [], tool_choice: 'none', parallel_tool_calls: true, metadata: { a: 'b' }, top_logprobs: null,
    });
    assert.deepEqual(p.overrides, {});
    refusesField({ logprobs: true }, 'logprobs', /not supported/);
    refusesField({ presence_penalty: 0.5 }, 'presence_penalty');
    refusesField({ frequency_penalty: 1 }, 'frequency_penalty');
    refusesField({ response_format: { type: 'json_object' } }, 'response_format');
    refusesField({ tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools');
    refusesField({ user: 5 }, 'user');
  });

  it('refuses bad values, naming the field', () => {
    refuses([], null, /JSON object/);
    refuses({ model: 'x' }, 'messages', /missing/);
    refuses({ messages: [] }, 'messages', /empty/);
    refuses({ messages: 'hi' }, 'messages');
    refusesField({ n: 2 }, 'n', /1/);
    refusesField({ unknown_thing: 1 }, 'unknown_thing', /unknown parameter/);
    refusesField({ max_tokens: 0 }, 'max_tokens');
    refusesField({ max_tokens: 2.5 }, 'max_tokens', /integer/);
    refusesField({ max_tokens: 4, max_completion_tokens: 5 }, 'max_tokens', /disagree/);
    refusesField({ temperature: -1 }, 'temperature');
    refusesField({ temperature: 3 }, 'temperature');
    refusesField({ temperature: '0.5' }, 'temperature');
    refusesField({ top_p: 0 }, 'top_p');
    refusesField({ seed: 1.5 }, 'seed');
    refusesField({ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop', /at most 4/);
    refusesField({ stop: ['a', 3] }, 'stop[1]');
    refusesField({ stop: '' }, 'stop', /empty/);
    refusesField({ model: 3 }, 'model');
    refusesField({ messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].role');
    refusesField({ messages: [{ content: 'x' }] }, 'messages[0].role');
    refusesField({ messages: [{ role: 'user' }] }, 'messages[0].content', /missing/);
    refusesField({ messages: [{ role: 'user', content: 'x', tool_call_id: 'a' }] }, 'messages[0].tool_call_id');
    refusesField({ messages: [user([{ type: 'input_audio', input_audio: {} }])] }, 'messages[0].content[0].type');
    refusesField({ messages: [user([{ type: 'text' }])] }, 'messages[0].content[0].text');
    refusesField({ messages: [user([{ type: 'text', text: 'a', extra: 1 }])] }, 'messages[0].content[0].extra');
    refusesField({ messages: [user([{ type: 'image_url', image_url: 'data:x' }])] }, 'messages[0].content[0].image_url');
    refusesField({ messages: [user([{ type: 'image_url', image_url: { url: '' } }])] }, 'messages[0].content[0].image_url.url');
    refusesField({ messages: [user([{ type: 'image_url', image_url: { url: 'x', detail: 'max' } }])] }, 'messages[0].content[0].image_url.detail');
    refusesField({ messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 'messages[0].content[0].type', /only allowed in user/);
  });

  it('answers any mutation of a valid body with a result or a 400, never another error', () => {
    const valid = {
      model: 'm', max_tokens: 5, temperature: 0.5, top_p: 0.9, seed: 1, stop: ['a'], stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'system', content: 'x' }, user([{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA', detail: 'auto' } }, { type: 'text', text: 'q' }])],
    };
    const m = new Mutator(FUZZ_SEED);
    for (let i = 0; i < fuzzRuns(2000); i++) {
      let doc: unknown = valid;
      for (let k = 1 + m.int(3); k > 0; k--) doc = m.json(doc);
      try {
        parseChatRequest(doc, SAMPLING_MODEL);
      } catch (e) {
        assert.ok(e instanceof ApiError && e.status === 400, `${JSON.stringify(doc)} → ${e}`);
      }
    }
  });
});
