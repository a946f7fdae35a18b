// 200 requests, 16 at a time, through the openai client: no error, no tensor growth, and every
// greedy answer identical to the same request run alone (vlm.generate) before the server started.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Vlm, type GenerationOutput } from '../../src/engine.ts';
import { tf } from '../../src/backend/index.ts';
import { startServer, type RunningServer } from '../../src/serve/http-server.ts';
import { fixture, image } from '../helpers/paths.ts';
import { VlmBatcher, dataUri, waitIdle } from './helpers.ts';

const MODEL = fixture('tiny-smolvlm');
const N = 200;
const CONCURRENCY = 16;
const IMAGES = [image('horse.png'), image('chelsea.png')];

/** Request i: a distinct text question, every 20th with an image; 2 to 9 new tokens; every third streamed. */
function requestFor(i: number) {
  const text = `Question ${i}: what is ${i * 7} plus ${i % 13}?`;
  const img = i % 20 === 0 ? IMAGES[(i / 20) % 2]! : undefined;
  return {
    maxTokens: 2 + (i % 8),
    stream: i % 3 === 0,
    engine: { messages: [{ role: 'user', content: img ? [{ type: 'image', image: img }, { type: 'text', text }] : text }] },
    openai: [{ role: 'user' as const, content: img ? [{ type: 'image_url' as const, image_url: { url: dataUri(img) } }, { type: 'text' as const, text }] : text }],
  };
}

describe('tfvlm serve under load', () => {
  let vlm: Vlm;
  let batcher: VlmBatcher;
  let server: RunningServer;

  before(async () => {
    vlm = await Vlm.load(MODEL);
    batcher = new VlmBatcher(vlm, { maxBatch: 8, maxQueue: 64 });
  });
  after(async () => {
    await server?.close();
    await batcher.close();
    vlm.dispose();
  });

  it(`answers ${N} requests at ${CONCURRENCY} concurrent, each as it answers alone, with no tensor growth`, async () => {
    const refs: GenerationOutput[] = [];
    for (let i = 0; i < N; i++) {
      const r = requestFor(i);
      refs.push(await vlm.generate(r.engine, { doSample: false, maxNewTokens: r.maxTokens }));
    }
    server = await startServer({ vlm, batcher, port: 0 });
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    // One request first, so lazily built state (not a leak) is in the baseline.
    await client.chat.completions.create({ model: 'x', messages: requestFor(0).openai, temperature: 0, max_tokens: 2 });
    await waitIdle(batcher);
    const baseline = tf.memory().numTensors;

    const answers: { text: string; finish: string | null; usage: OpenAI.CompletionUsage | undefined }[] = new Array(N);
    let next = 0;
    const worker = async () => {
      while (next < N) {
        const i = next++;
        const r = requestFor(i);
        const params = { model: 'tiny', messages: r.openai, temperature: 0, max_tokens: r.maxTokens };
        if (r.stream) {
          let text = '';
          let finish: string | null = null;
          let usage: OpenAI.CompletionUsage | undefined;
          for await (const c of await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } })) {
            text += c.choices[0]?.delta.content ?? '';
            finish = c.choices[0]?.finish_reason ?? finish;
            usage = c.usage ?? usage;
          }
          answers[i] = { text, finish, usage };
        } else {
          const c = await client.chat.completions.create(params);
          answers[i] = { text: c.choices[0]!.message.content ?? '', finish: c.choices[0]!.finish_reason, usage: c.usage };
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    for (let i = 0; i < N; i++) {
      const ref = refs[i]!;
      assert.equal(answers[i]!.text, ref.text, `request ${i}`);
      assert.equal(answers[i]!.finish, ref.stopReason === 'max_new_tokens' ? 'length' : 'stop', `request ${i}`);
      assert.deepEqual(answers[i]!.usage, {
        prompt_tokens: ref.input_ids.length, completion_tokens: ref.generatedIds.length, total_tokens: ref.input_ids.length + ref.generatedIds.length,
      }, `request ${i}`);
    }
    await waitIdle(batcher);
    assert.equal(tf.memory().numTensors, baseline, 'no tensor growth');
    assert.ok(batcher.stats.maxRows > 1, `requests shared decode steps (at most ${batcher.stats.maxRows} rows in a step)`);
  });
});
