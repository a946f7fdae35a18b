// tfvlm serve end to end, in process, on the tiny SmolVLM fixture: answers through the official
// openai client equal vlm.generate and `tfvlm generate --greedy`; OpenAI's shapes; every kind of
// bad input a 4xx naming the field; limits (body, time, queue, image bytes) hold; a client that
// leaves frees its tensors; the server keeps answering after all of it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import OpenAI from 'openai';
import { Vlm } from '../../src/engine.ts';
import { TfvlmError } from '../../src/errors.ts';
import { BatcherClosedError, QueueFullError } from '../../src/generation/continuous-batching.ts';
import { tf } from '../../src/backend/index.ts';
import { startServer, type RunningServer } from '../../src/serve/http-server.ts';
import { fixture, image } from '../helpers/paths.ts';
import { VlmBatcher, dataUri, postJson, rawRequest, recording, waitIdle } from './helpers.ts';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const MODEL = fixture('tiny-smolvlm');
const CAT = image('chelsea.png'); // 451x300, 240 KB
const HORSE = image('horse.png'); // 400x328, 16 KB
const BIG = image('camera.png'); // 512x512: past the main server's 200,000-pixel limit
const PROMPT = 'Describe this image.';

type Msg = OpenAI.Chat.Completions.ChatCompletionMessageParam;
const imageMessages = (url: string, text = PROMPT): Msg[] => [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text }] }];
const engineRequest = (file: string, text = PROMPT) => ({ messages: [{ role: 'user', content: [{ type: 'image', image: file }, { type: 'text', text }] }] });

describe('tfvlm serve', () => {
  let vlm: Vlm;
  let batcher: VlmBatcher;
  let rec: ReturnType<typeof recording>;
  let server: RunningServer;
  let client: OpenAI;
  let chat: string;
  let tmp: string;

  before(async () => {
    vlm = await Vlm.load(MODEL);
    batcher = new VlmBatcher(vlm, { maxBatch: 8, maxQueue: 64 });
    rec = recording(batcher);
    server = await startServer({
      vlm, batcher: rec, port: 0, modelId: 'tiny-smolvlm',
      maxBodyBytes: 1024 * 1024, headersTimeoutMs: 800, requestTimeoutMs: 1200, maxImagePixels: 200_000,
    });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    chat = `${server.url}/v1/chat/completions`;
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-serve-'));
  });
  after(async () => {
    await server.close();
    await batcher.close();
    vlm.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('answers plain and streamed, equal to vlm.generate and to tfvlm generate --greedy, with usage', async () => {
    const ref = await vlm.generate(engineRequest(CAT), { doSample: false, maxNewTokens: 12 });
    const messages = imageMessages(dataUri(CAT));

    const plain = await client.chat.completions.create({ model: 'whatever', messages, temperature: 0, max_tokens: 12 });
    assert.equal(plain.object, 'chat.completion');
    assert.equal(plain.model, 'tiny-smolvlm');
    assert.match(plain.id, /^chatcmpl-/);
    assert.equal(plain.choices.length, 1);
    assert.equal(plain.choices[0]!.message.role, 'assistant');
    assert.equal(plain.choices[0]!.message.content, ref.text);
    assert.equal(plain.choices[0]!.finish_reason, ref.stopReason === 'eos' ? 'stop' : 'length');
    assert.deepEqual(plain.usage, {
      prompt_tokens: ref.input_ids.length, completion_tokens: ref.generatedIds.length, total_tokens: ref.input_ids.length + ref.generatedIds.length,
    });

    const stream = await client.chat.completions.create({ model: 'x', messages, temperature: 0, max_tokens: 12, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    assert.deepEqual(chunks[0]!.choices[0]!.delta, { role: 'assistant', content: '' });
    const body = chunks.slice(0, -1);
    assert.ok(body.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0]!.id && c.usage === null && c.choices.length === 1));
    assert.equal(body.map((c) => c.choices[0]!.delta.content ?? '').join(''), ref.text);
    assert.ok(body.slice(0, -1).every((c) => c.choices[0]!.finish_reason === null));
    assert.deepEqual(body.at(-1)!.choices[0]!.delta, {});
    assert.equal(body.at(-1)!.choices[0]!.finish_reason, plain.choices[0]!.finish_reason);
    assert.deepEqual(chunks.at(-1)!.choices, []);
    assert.deepEqual(chunks.at(-1)!.usage, plain.usage);

    // The same messages through the CLI (the image as a file beside the messages JSON).
    fs.copyFileSync(CAT, path.join(tmp, 'cat.png'));
    fs.writeFileSync(path.join(tmp, 'messages.json'), JSON.stringify(engineRequest('cat.png').messages));
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'generate', '--model', MODEL, '--messages', path.join(tmp, 'messages.json'), '--greedy', '--max-new-tokens', '12', '--json', '-q'], { env: { ...process.env, TFVLM_MODEL: '' } });
    const cli = JSON.parse(stdout);
    assert.equal(cli.text, plain.choices[0]!.message.content);
    assert.deepEqual(cli.generated_ids, ref.generatedIds);
  });

  it('streams SSE data lines ending with [DONE]; without include_usage no usage field', async () => {
    const res = await fetch(chat, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'Hello there' }], temperature: 0, max_tokens: 5, stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const text = await res.text();
    assert.ok(text.endsWith('data: [DONE]\n\n'), text.slice(-100));
    const events = text.split('\n\n').filter(Boolean);
    assert.ok(events.every((e) => e.startsWith('data: ') && !e.includes('\n')));
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
    assert.ok(chunks.every((c) => !('usage' in c)));
    assert.equal(chunks.at(-1).choices[0].finish_reason === 'length' || chunks.at(-1).choices[0].finish_reason === 'stop', true);
  });

  it('honours stop strings (finish_reason stop, the stop text left out) and max_tokens (finish_reason length)', async () => {
    const messages: Msg[] = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Tell me a story about a cat.' }];
    const request = { messages };
    const ref = await vlm.generate(request, { doSample: false, maxNewTokens: 16 });
    const at = [...ref.text].findIndex((_, i) => i >= 3 && /^[a-z]{2}$/i.test(ref.text.slice(i, i + 2)));
    assert.ok(at > 0, `no two-letter stop candidate in ${JSON.stringify(ref.text)}`);
    const stop = ref.text.slice(at, at + 2);
    const refStop = await vlm.generate(request, { doSample: false, maxNewTokens: 16, stopStrings: [stop] });
    assert.equal(refStop.stopReason, 'stop_string');
    assert.equal(refStop.text, ref.text.slice(0, ref.text.indexOf(stop)));

    const r = await client.chat.completions.create({ model: 'x', messages, temperature: 0, max_tokens: 16, stop: [stop, 'never-seen'] });
    assert.equal(r.choices[0]!.message.content, refStop.text);
    assert.equal(r.choices[0]!.finish_reason, 'stop');
    assert.equal(r.usage!.completion_tokens, refStop.generatedIds.length);
    const s = await client.chat.completions.create({ model: 'x', messages, temperature: 0, max_tokens: 16, stop, stream: true });
    let streamed = '';
    let finish: string | null = null;
    for await (const c of s) {
      streamed += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(streamed, refStop.text);
    assert.equal(finish, 'stop');

    const ref3 = await vlm.generate(request, { doSample: false, maxNewTokens: 3 });
    assert.equal(ref3.stopReason, 'max_new_tokens');
    const short = await client.chat.completions.create({ model: 'x', messages, temperature: 0, max_completion_tokens: 3 });
    assert.equal(short.choices[0]!.message.content, ref3.text);
    assert.equal(short.choices[0]!.finish_reason, 'length');
    assert.equal(short.usage!.completion_tokens, 3);

    // Sampling: the same seed gives the same answer.
    const sampled = async () => (await client.chat.completions.create({ model: 'x', messages, temperature: 0.9, top_p: 0.95, seed: 7, max_tokens: 8 })).choices[0]!.message.content;
    const refSampled = await vlm.generate(request, { doSample: true, temperature: 0.9, topP: 0.95, seed: 7, maxNewTokens: 8 });
    assert.equal(await sampled(), refSampled.text);
  });

  it('lists the model and reports health', async () => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => [m.id, m.object, m.owned_by]), [['tiny-smolvlm', 'model', 'tfvlm']]);
    assert.equal((await client.models.retrieve('tiny-smolvlm')).id, 'tiny-smolvlm');
    await assert.rejects(client.models.retrieve('other'), (e: unknown) => e instanceof OpenAI.NotFoundError);
    const health = await (await fetch(`${server.url}/health`)).json();
    assert.deepEqual(health, { status: 'ok', model: 'tiny-smolvlm', running: 0, waiting: 0, max_batch: 8, max_queue: 64 });
  });

  it('answers bad input with 400 naming the field, in OpenAI error shape', async () => {
    const base = { model: 'x', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
    const withImage = (url: string) => ({ ...base, messages: imageMessages(url) });
    const URL_PARAM = 'messages[0].content[0].image_url.url';
    const png = fs.readFileSync(CAT);
    const corrupt = Buffer.concat([png.subarray(0, 100), Buffer.alloc(5000, 0x55)]);
    const cases: [string, unknown, string | null, RegExp][] = [
      ['invalid JSON', '{"messages": [', null, /not valid JSON/],
      ['body not an object', '[1, 2]', null, /JSON object/],
      ['bad schema', { model: 'x', messages: 'hi' }, 'messages', /list of messages/],
      ['bad part', { ...base, messages: [{ role: 'user', content: [{ type: 'image', image: 'x.png' }] }] }, 'messages[0].content[0].type', /image_url/],
      ['n=2', { ...base, n: 2 }, 'n', /1/],
      ['unknown field', { ...base, best_of: 2 }, 'best_of', /unknown parameter/],
      ['non-default no-op field', { ...base, logprobs: true }, 'logprobs', /not supported/],
      ['bad data URI', withImage('data:image/png;base64,@@@@'), URL_PARAM, /base64/],
      ['data URI not an image type', withImage('data:text/plain;base64,aGVsbG8='), URL_PARAM, /media type/],
      ['corrupt image bytes', withImage(`data:image/png;base64,${corrupt.toString('base64')}`), URL_PARAM, /corrupt|cannot decode/],
      ['not an image at all', withImage(`data:image/png;base64,${Buffer.from('hello world, not a picture').toString('base64')}`), URL_PARAM, /cannot decode|format/i],
      ['image past maxImagePixels', withImage(dataUri(BIG)), URL_PARAM, /262144 pixels, over the 200000-pixel limit/],
      ['remote URL without the flag', withImage('http://127.0.0.1:9/cat.png'), URL_PARAM, /--allow-remote-images/],
      ['local path without the flag', withImage(CAT), URL_PARAM, /--allow-local-files/],
      ['file URL without the flag', withImage(pathToFileURL(CAT).href), URL_PARAM, /--allow-local-files/],
      ['other URL scheme', withImage('ftp://example.com/cat.png'), URL_PARAM, /scheme/],
      ['more text than the context holds', { ...base, messages: [{ role: 'user', content: 'hello '.repeat(50_000) }] }, 'messages', /300000 characters of text cannot fit the model's context of 8192 tokens/],
      ['more messages than the context holds', { ...base, messages: Array.from({ length: 9000 }, () => ({ role: 'user', content: 'x' })) }, 'messages', /9000 messages/],
      ['a prompt past the context', { ...base, messages: [{ role: 'user', content: 'hello '.repeat(9000) }] }, null, /context window/],
    ];
    for (const [name, body, param, message] of cases) {
      const r = await postJson(chat, body);
      assert.equal(r.status, 400, `${name}: ${JSON.stringify(r.json)}`);
      assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type'], name);
      assert.equal(r.json.error.type, 'invalid_request_error', name);
      assert.equal(r.json.error.param, param, `${name}: ${r.json.error.message}`);
      assert.match(r.json.error.message, message, name);
      if (param) assert.ok(r.json.error.message.startsWith(param), `${name}: the message names the field: ${r.json.error.message}`);
    }
    // The openai client surfaces them as BadRequestError with the field.
    await assert.rejects(client.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'hi' }], n: 2 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'n');
  });

  it('answers 413 past the body limit (declared or chunked), 404 and 405', async () => {
    const big = Buffer.alloc(2 * 1024 * 1024, 0x20);
    const declared = await rawRequest(chat, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': big.length } }, (req) => req.end(big));
    assert.equal(declared.status, 413, JSON.stringify(declared));
    assert.equal(JSON.parse(declared.body).error.code, 'request_too_large');
    const chunked = await rawRequest(chat, { method: 'POST', headers: { 'content-type': 'application/json' } }, (req) => {
      const piece = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < 32) {
          sent++;
          if (!req.write(piece)) return void req.once('drain', pump);
        }
        req.end();
      };
      req.on('error', () => {});
      pump();
    });
    assert.equal(chunked.status, 413, JSON.stringify(chunked));
    const expect = await rawRequest(chat, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': big.length, expect: '100-continue' } }, (req) => {
      req.on('continue', () => req.end(big));
      req.flushHeaders();
    });
    assert.equal(expect.status, 413, 'Expect: 100-continue with an oversized body is refused before it is sent');

    const notFound = await fetch(`${server.url}/v1/completions`, { method: 'POST', body: '{}' });
    assert.equal(notFound.status, 404);
    assert.equal((await notFound.json()).error.type, 'invalid_request_error');
    const wrongMethod = await fetch(chat);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.get('allow'), 'POST');
    assert.equal((await fetch(`${server.url}/health`, { method: 'DELETE' })).status, 405);
  });

  it('cuts off slowloris clients (partial body, partial headers) while a normal request succeeds', async () => {
    const { port } = new URL(server.url);
    const slow = (head: string) => new Promise<{ data: string; ms: number }>((resolve) => {
      const t0 = Date.now();
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(head));
      let data = '';
      socket.on('data', (d) => { data += d; });
      socket.on('error', () => {});
      socket.on('close', () => resolve({ data, ms: Date.now() - t0 }));
    });
    const partialBody = slow('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"messages": [');
    const partialHeaders = slow('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-');
    const normal = await client.chat.completions.create({ model: 'x', messages: imageMessages(dataUri(HORSE)), temperature: 0, max_tokens: 4 });
    assert.equal(normal.choices[0]!.finish_reason !== null, true);
    const [body, headers] = await Promise.all([partialBody, partialHeaders]);
    assert.match(body.data, /^HTTP\/1\.1 408/);
    assert.match(body.data, /"code":"request_timeout"/);
    assert.ok(body.ms < 4000, `cut off after ${body.ms} ms`);
    assert.match(headers.data, /^HTTP\/1\.1 408/);
    assert.ok(headers.ms < 4000, `cut off after ${headers.ms} ms`);
  });

  it('frees the tensors of a client that leaves mid-stream or before the answer', async () => {
    await waitIdle(rec);
    const baseline = tf.memory().numTensors;
    const n = rec.ends.length;
    // Greedy, this prompt runs 587 tokens before its end-of-turn: it is still generating when the client leaves.
    const long: Msg[] = [{ role: 'user', content: 'Tell me a story about a cat.' }];
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'x', messages: long, temperature: 0, max_tokens: 4000, stream: true }, { signal: controller.signal });
    let got = 0;
    // The client ends the iteration quietly on its own abort.
    for await (const c of stream) {
      if (c.choices[0]?.delta.content && ++got === 3) controller.abort();
    }
    assert.equal(got, 3);
    await waitIdle(rec);
    assert.equal(rec.ends.length, n + 1);
    assert.match(rec.ends.at(-1)!, /^(aborted|left)$/, 'the generation was stopped, not run to its end');
    assert.equal(tf.memory().numTensors, baseline, 'no tensor left behind by the aborted stream');

    // A non-streamed request whose client hangs up.
    const req = http.request(chat, { method: 'POST', headers: { 'content-type': 'application/json' } });
    req.on('error', () => {});
    const started = new Promise<void>((resolve) => { rec.onStart = resolve; });
    req.end(JSON.stringify({ model: 'x', messages: long, temperature: 0, max_tokens: 4000 }));
    await started;
    rec.onStart = undefined;
    req.destroy();
    await new Promise((r) => setTimeout(r, 50));
    await waitIdle(rec);
    assert.equal(rec.ends.length, n + 2);
    assert.match(rec.ends.at(-1)!, /^(aborted|left)$/, 'the generation was stopped, not run to its end');
    assert.equal(tf.memory().numTensors, baseline, 'no tensor left behind by the hung-up request');
  });

  it('still answers normally after all of the above', async () => {
    const ref = await vlm.generate(engineRequest(CAT), { doSample: false, maxNewTokens: 6 });
    const r = await client.chat.completions.create({ model: 'x', messages: imageMessages(dataUri(CAT)), temperature: 0, max_tokens: 6 });
    assert.equal(r.choices[0]!.message.content, ref.text);
  });
});

describe('tfvlm serve with local files and remote images allowed, max batch 1, max queue 1', () => {
  let vlm: Vlm;
  let batcher: VlmBatcher;
  let server: RunningServer;
  let images: http.Server;
  let imagesUrl: string;
  let streamedBytes = 0;
  let chat: string;

  before(async () => {
    vlm = await Vlm.load(MODEL);
    batcher = new VlmBatcher(vlm, { maxBatch: 1, maxQueue: 1 });
    server = await startServer({
      vlm, batcher, port: 0, allowLocalFiles: true, allowRemoteImages: true, maxImageBytes: 100_000, fetchTimeoutMs: 800,
    });
    chat = `${server.url}/v1/chat/completions`;
    const horse = fs.readFileSync(HORSE);
    images = http.createServer((req, res) => {
      switch (req.url) {
        case '/horse.png': res.writeHead(200, { 'content-type': 'image/png' }).end(horse); return;
        case '/cat.png': res.writeHead(200, { 'content-type': 'image/png', 'content-length': fs.statSync(CAT).size }).end(fs.readFileSync(CAT)); return;
        case '/redirect': res.writeHead(302, { location: '/horse.png' }).end(); return;
        case '/to-file': res.writeHead(302, { location: pathToFileURL(HORSE).href }).end(); return;
        case '/missing': res.writeHead(404).end(); return;
        case '/hang': return; // never answers
        case '/endless': {
          // No content-length: the limit must stop the reading.
          res.writeHead(200, { 'content-type': 'image/png' });
          const piece = Buffer.alloc(16 * 1024, 1);
          const pump = () => {
            while (streamedBytes < 20 * 1024 * 1024 && !res.destroyed) {
              streamedBytes += piece.length;
              if (!res.write(piece)) return void res.once('drain', pump);
            }
            res.end();
          };
          res.on('error', () => {});
          pump();
          return;
        }
      }
    });
    await new Promise<void>((r) => images.listen(0, '127.0.0.1', r));
    imagesUrl = `http://127.0.0.1:${(images.address() as net.AddressInfo).port}`;
  });
  after(async () => {
    await server.close();
    await batcher.close();
    vlm.dispose();
    images.closeAllConnections();
    await new Promise((r) => images.close(r));
  });

  const ask = (url: string, maxTokens = 4) => postJson(chat, { model: 'x', messages: imageMessages(url), temperature: 0, max_tokens: maxTokens });

  it('fetches http images within the byte and time limits, follows redirects to http only, reads local files', async () => {
    const ref = await vlm.generate(engineRequest(HORSE), { doSample: false, maxNewTokens: 4 });
    for (const url of [`${imagesUrl}/horse.png`, `${imagesUrl}/redirect`, HORSE, pathToFileURL(HORSE).href]) {
      const r = await ask(url);
      assert.equal(r.status, 200, `${url}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.choices[0].message.content, ref.text, url);
    }
    const refused: [string, RegExp][] = [
      [`${imagesUrl}/cat.png`, /240512 bytes, over the 0\.1 MiB limit/],
      [`${imagesUrl}/endless`, /more than 100000 bytes/],
      [`${imagesUrl}/to-file`, /redirected to a file: URL/],
      [`${imagesUrl}/missing`, /HTTP 404/],
      [`${imagesUrl}/hang`, /longer than 800 ms/],
      ['http://127.0.0.1:9/nothing.png', /could not fetch/],
      [CAT, /over the 0\.1 MiB limit/],
      [path.join(os.tmpdir(), 'no-such-tfvlm-image.png'), /no such file/],
      [os.tmpdir(), /not a file/],
    ];
    for (const [url, message] of refused) {
      const r = await ask(url);
      assert.equal(r.status, 400, `${url}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.param, 'messages[0].content[0].image_url.url');
      assert.match(r.json.error.message, message, url);
    }
    assert.ok(streamedBytes < 5 * 1024 * 1024, `the endless image was read only to the limit (${streamedBytes} bytes sent)`);
  });

  it('answers 429 when the queue is full', async () => {
    const results = await Promise.all([0, 1, 2].map(() => ask(dataUri(HORSE), 8)));
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 200, 429], JSON.stringify(results.map((r) => r.json)));
    const refused = results.find((r) => r.status === 429)!;
    assert.equal(refused.json.error.type, 'rate_limit_error');
    assert.equal(refused.json.error.code, 'queue_full');
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.equal((await ask(dataUri(HORSE))).status, 200);
  });
});

describe('tfvlm serve error paths and shutdown', () => {
  let vlm: Vlm;
  before(async () => {
    vlm = await Vlm.load(MODEL);
  });
  after(() => vlm.dispose());

  const body = (stream: boolean) => ({ model: 'x', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4000, temperature: 0, stream });
  /** A batcher whose generation yields `deltas` and then throws `error`. */
  const scripted = (deltas: string[], error: Error) => ({
    load: { running: 0, waiting: 0, maxBatch: 1, maxQueue: 1 },
    async *stream(): AsyncGenerator<string, never> {
      for (const d of deltas) yield d;
      throw error;
    },
  });

  it('maps the batcher errors: queue full 429, closed 503, bad input 400, a bug 500; mid-stream as an SSE error event', async () => {
    for (const [error, status, type] of [
      [new QueueFullError('full'), 429, 'rate_limit_error'],
      [new BatcherClosedError('closed'), 503, 'unavailable_error'],
      [new TfvlmError('prompt too long'), 400, 'invalid_request_error'],
      [new Error('boom'), 500, 'server_error'],
    ] as const) {
      const lines: string[] = [];
      const s = await startServer({ vlm, batcher: scripted([], error), port: 0, log: (l) => lines.push(l) });
      try {
        const r = await postJson(`${s.url}/v1/chat/completions`, body(false));
        assert.equal(r.status, status, JSON.stringify(r.json));
        assert.equal(r.json.error.type, type);
        const streamed = await postJson(`${s.url}/v1/chat/completions`, body(true));
        assert.equal(streamed.status, status, 'an error before the first token is a plain HTTP error, streamed or not');
        if (status === 500) assert.ok(lines.some((l) => l.includes('boom')), 'a bug is logged');
      } finally {
        await s.close();
      }
    }
    const s = await startServer({ vlm, batcher: scripted(['Hel', 'lo'], new Error('kernel exploded')), port: 0 });
    try {
      const res = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(body(true)) });
      assert.equal(res.status, 200);
      const events = (await res.text()).split('\n\n').filter(Boolean);
      assert.ok(!events.includes('data: [DONE]'));
      const last = JSON.parse(events.at(-1)!.slice('data: '.length));
      assert.equal(last.error.type, 'server_error');
      assert.match(last.error.message, /kernel exploded/);
      assert.equal(events.slice(1, -1).map((e) => JSON.parse(e.slice(6)).choices[0].delta.content).join(''), 'Hello');
    } finally {
      await s.close();
    }
  });

  it('on close: requests in flight get 503 (or an SSE error event), new connections are refused', async () => {
    const batcher = new VlmBatcher(vlm, { maxBatch: 4, maxQueue: 4 });
    const s = await startServer({ vlm, batcher, port: 0 });
    const chat = `${s.url}/v1/chat/completions`;
    const plain = postJson(chat, { ...body(false), messages: imageMessages(dataUri(CAT)) });
    const res = await fetch(chat, { method: 'POST', body: JSON.stringify(body(true)) });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read(); // the first chunk: the stream is under way
    await s.close();
    let rest = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    assert.match(rest, /"code":"server_closing"/);
    const p = await plain;
    assert.equal(p.status, 503, JSON.stringify(p.json));
    assert.equal(p.json.error.code, 'server_closing');
    await assert.rejects(fetch(`${s.url}/health`));
    await batcher.close();
  });
});
