// The queue's pieces in one process, on a redis-server of our own: --queue URLs and their errors, job
// payloads and their checks, idempotent enqueueing, a per-item failure as an {id, error} line, a job a
// worker must refuse, a finished job left by a run with other options (redone, not collected), and a
// worker stopped mid-job giving its jobs back.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Vlm } from '../../src/engine.ts';
import { TfvlmError } from '../../src/errors.ts';
import { openInput, inputItems } from '../../src/batch/input.ts';
import { runItem } from '../../src/batch/item.ts';
import { batchCommand } from '../../src/cli/batch.ts';
import { workerCommand } from '../../src/cli/worker.ts';
import { parseCommandArgs } from '../../src/cli/command.ts';
import { runQueueBatch } from '../../src/queue/batch-run.ts';
import { enqueueItems } from '../../src/queue/enqueue.ts';
import { jobIdOf, makePayload, parsePayload, payloadGeneration, PayloadError } from '../../src/queue/payload.ts';
import { checkRedis } from '../../src/queue/reach.ts';
import { parseRedisUrl } from '../../src/queue/redis-url.ts';
import { startQueueWorker, type QueueWorker } from '../../src/queue/worker.ts';
import { fixture, image } from '../helpers/paths.ts';
import { freePort, redisMissing, startRedis, type TestRedis } from './redis-server.ts';

const skip = redisMissing();
const GENERATION = { doSample: false, maxNewTokens: 6, imageSplitting: false };
let redis: TestRedis | undefined;
let vlm: Vlm | undefined;
let tmp: string;
let db = 2;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-queue-unit-'));
  fs.mkdirSync(path.join(tmp, 'images'));
  for (const name of ['horse.png', 'chelsea.png', 'camera.png']) fs.copyFileSync(image(name), path.join(tmp, 'images', name));
  if (skip) return;
  redis = await startRedis();
  vlm = await Vlm.load(fixture('tiny-smolvlm'));
});

after(async () => {
  vlm?.dispose();
  await redis?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function writeInput(name: string, items: object[]): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, items.map((i) => JSON.stringify(i)).join('\n') + '\n');
  return file;
}
async function listAll<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
const readOutput = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
/** A fresh database (and so an empty queue) for each test. */
const nextUrl = () => redis!.url(db++);
const queueAt = (url: string) => {
  const t = parseRedisUrl(url);
  return new Queue('tfvlm-batch', { connection: { host: t.host, port: t.port, db: t.db } });
};
const quietWorker = (url: string, concurrency = 2) => startQueueWorker(vlm!, { target: parseRedisUrl(url), concurrency, lockDurationMs: 2000, stalledIntervalMs: 1000 });

describe('--queue URLs', () => {
  it('reads host, port, database, user and password; masks the password', () => {
    assert.deepEqual(parseRedisUrl('redis://10.0.0.5:6380/3'), { host: '10.0.0.5', port: 6380, db: 3, tls: false, display: 'redis://10.0.0.5:6380/3' });
    assert.deepEqual(parseRedisUrl('redis://queue.internal'), { host: 'queue.internal', port: 6379, db: 0, tls: false, display: 'redis://queue.internal:6379/0' });
    assert.deepEqual(parseRedisUrl('rediss://me:p%40ss@[::1]:7000/1'), {
      host: '::1', port: 7000, db: 1, tls: true, username: 'me', password: 'p@ss', display: 'rediss://me:***@[::1]:7000/1',
    });
  });

  it('refuses a bad URL with the expected form', () => {
    const cases: [string, RegExp][] = [
      ['localhost:6379', /the scheme must be redis:\/\/ or rediss:\/\/, got localhost:\/\//],
      ['http://127.0.0.1:6379/0', /the scheme must be redis:\/\/ or rediss:\/\/, got http:\/\//],
      ['redis://127.0.0.1:6379/zero', /the path must be a database number \(\/0, \/1, …\), got \/zero/],
      ['redis://127.0.0.1:99999', /not a URL|bad port/],
      ['redis://', /no host/],
      ['not a url', /not a URL/],
    ];
    for (const [url, why] of cases) {
      assert.throws(() => parseRedisUrl(url), (e: Error) => {
        assert.ok(e instanceof TfvlmError);
        assert.match(e.message, why);
        assert.match(e.message, /expected redis:\/\/\[USER:PASSWORD@\]HOST\[:PORT\]\[\/DB\]/);
        return true;
      }, url);
    }
  });

  it('the commands refuse a bad URL, an unreachable server and the workers\' flags before any work', async () => {
    const input = writeInput('refuse.jsonl', [{ id: 'a', image: 'images/horse.png' }]);
    const output = path.join(tmp, 'refuse-out.jsonl');
    const batch = (...args: string[]) => batchCommand.run(parseCommandArgs(batchCommand, ['--input', input, '--output', output, ...args]));
    const worker = (...args: string[]) => workerCommand.run(parseCommandArgs(workerCommand, args));
    await assert.rejects(batch('--queue', 'http://127.0.0.1/0'), /--queue "http:\/\/127\.0\.0\.1\/0": the scheme must be redis/);
    await assert.rejects(worker('--queue', 'redis://127.0.0.1:6379/x'), /--queue "redis:\/\/127\.0\.0\.1:6379\/x": the path must be a database number/);
    await assert.rejects(worker(), /--queue is required/);
    await assert.rejects(batch('--queue', 'redis://127.0.0.1/0', '--model', 'x'), /--model is for the workers with --queue \(the collector loads no model\)/);
    await assert.rejects(batch('--queue', 'redis://127.0.0.1/0', '--max-batch', '4'), /--max-batch is for the workers/);
    const closed = await freePort();
    await assert.rejects(batch('--queue', `redis://127.0.0.1:${closed}/0`),
      new RegExp(`cannot reach Redis at redis://127\\.0\\.0\\.1:${closed}/0: .*ECONNREFUSED.* \\(is redis-server running there, and reachable from this machine\\?\\)`));
    await assert.rejects(worker('--queue', `redis://127.0.0.1:${closed}/0`, '--model', path.join(tmp, 'no-model')), /cannot reach Redis at/);
    assert.equal(fs.existsSync(output), false);
  });
});

describe('job payloads', () => {
  it('job ids: deterministic, never an integer, never a colon', () => {
    assert.equal(jobIdOf('12'), 'item-12');
    assert.equal(jobIdOf('a:b%c'), 'item-a%3Ab%25c');
    assert.notEqual(jobIdOf('a:b'), jobIdOf('a%3Ab'));
  });

  it('a worker refuses data that is not a payload of its version, by name', async () => {
    const [item] = await listAll(inputItems(openInput(writeInput('one.jsonl', [{ id: 'x', image: 'images/horse.png', prompt: 'Hi' }]))));
    const good = makePayload(item!, { question: 'Q?' }, payloadGeneration({ ...GENERATION, stopStrings: ['.'], temperature: undefined }));
    assert.deepEqual(good.generation, { ...GENERATION, stopStrings: ['.'] });
    const parsed = parsePayload(JSON.parse(JSON.stringify(good)), 'item-x');
    assert.equal(parsed.item.sources[0], path.join(tmp, 'images', 'horse.png'));
    assert.equal(parsed.item.prompt, 'Hi');
    const bad: [unknown, string, RegExp][] = [
      [{ foo: 1 }, 'item-x', /job item-x: not a tfvlm batch job/],
      [{ ...good, tfvlm: 2 }, 'item-x', /payload version 2, this worker reads version 1/],
      [good, 'item-y', /"item\.id" "x" does not match the job id/],
      [{ ...good, item: { ...good.item, sources: [] } }, 'item-x', /"item\.sources" is not a non-empty array/],
      [{ ...good, generation: { maxTokens: 3 } }, 'item-x', /unknown generation option "maxTokens"/],
      [{ ...good, generation: { temperature: '0' } }, 'item-x', /"generation\.temperature" is not a finite number/],
    ];
    for (const [data, id, why] of bad) assert.throws(() => parsePayload(data, id), (e: Error) => e instanceof PayloadError && why.test(e.message));
    assert.throws(() => payloadGeneration({ onProgress: () => {} }), /"onProgress" cannot be sent to queue workers/);
  });
});

describe('collector and worker', { skip }, () => {
  it('a database the server does not have is refused by name', async () => {
    await assert.rejects(checkRedis(parseRedisUrl(redis!.url(99))),
      /Redis at redis:\/\/127\.0\.0\.1:\d+\/99: cannot use database 99: ERR DB index is out of range/);
  });

  it('enqueueing again adds no job; a per-item failure is an {id, error} line; nothing stays in Redis', async () => {
    const url = nextUrl();
    assert.match(await checkRedis(parseRedisUrl(url)), /^\d+\.\d+/);
    const items = [
      { id: '1', image: 'images/horse.png' }, { id: 'b:2', image: 'images/chelsea.png' },
      { id: 'gone', image: 'images/nope.png' }, { id: 'pair', images: ['images/horse.png', 'images/camera.png'], question: 'Same?' },
    ];
    const input = writeInput('fail.jsonl', items);
    const output = path.join(tmp, 'fail-out.jsonl');
    const queue = queueAt(url);
    let worker: QueueWorker | undefined;
    try {
      const listed = await listAll(inputItems(openInput(input)));
      const payloadOf = (item: (typeof listed)[number]) => makePayload(item, {}, GENERATION);
      assert.equal(await enqueueItems(queue, listed, payloadOf), 4);
      assert.equal(await enqueueItems(queue, listed, payloadOf), 4);
      assert.equal(await queue.getWaitingCount(), 4);
      // The collector enqueues the same items once more (all already there), then collects.
      worker = await quietWorker(url);
      const status = await runQueueBatch({ url, input, output, generation: GENERATION, quiet: true, pollMs: 50 });
      assert.equal(status, 0);
      assert.equal(worker.stats.done, 4);
      const lines = readOutput(output);
      assert.deepEqual(lines.map((l) => l.id).sort(), ['1', 'b:2', 'gone', 'pair']);
      const gone = lines.find((l) => l.id === 'gone')!;
      assert.deepEqual(Object.keys(gone), ['id', 'image', 'error']);
      assert.equal(gone.image, 'images/nope.png');
      assert.match(gone.error as string, /nope\.png: no such file/);
      // The other lines are what a local run of the same item writes.
      for (const item of listed.filter((i) => i.id !== 'gone')) {
        const local = await runItem(vlm!, item, {}, GENERATION);
        const line = lines.find((l) => l.id === item.id)!;
        assert.deepEqual(Object.keys(line), Object.keys(local!));
        assert.equal(line.text, (local as { text: string }).text, item.id);
      }
      assert.deepEqual(lines.find((l) => l.id === 'pair')!.images, ['images/horse.png', 'images/camera.png']);
      const counts = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
      assert.deepEqual(Object.values(counts).filter((n) => n > 0), []);
      // A rerun has nothing to do and touches nothing.
      assert.equal(await runQueueBatch({ url, input, output, generation: GENERATION, quiet: true }), 0);
      assert.equal(readOutput(output).length, 4);
    } finally {
      await worker?.stop(0);
      await queue.close();
    }
  });

  it('a job that is not a tfvlm payload fails by name; a finished job from a run with another prompt is redone, not collected', async () => {
    const url = nextUrl();
    const input = writeInput('stale.jsonl', [{ id: 's1', image: 'images/horse.png' }, { id: 's2', image: 'images/chelsea.png' }]);
    const output = path.join(tmp, 'stale-out.jsonl');
    const queue = queueAt(url);
    let worker: QueueWorker | undefined;
    try {
      const listed = await listAll(inputItems(openInput(input)));
      // An earlier run asked s1 something else; its job finished but was never collected.
      await enqueueItems(queue, listed.slice(0, 1), (item) => makePayload(item, { prompt: 'Another prompt.' }, GENERATION));
      await queue.add('junk', { foo: 1 }, { jobId: 'item-junk' });
      worker = await quietWorker(url);
      for (let i = 0; (await queue.getCompletedCount()) < 1 || (await queue.getFailedCount()) < 1; i++) {
        assert.ok(i < 500, 'the two jobs finish');
        await new Promise((r) => setTimeout(r, 10));
      }
      const junk = await queue.getJob('item-junk');
      assert.match(junk!.failedReason, /job item-junk: not a tfvlm batch job/);
      const logs: string[] = [];
      const status = await runQueueBatch({ url, input, output, generation: GENERATION, quiet: true, pollMs: 50, say: (l) => logs.push(l) });
      assert.equal(status, 0);
      assert.match(logs.join('\n'), /1 finished job was left by a run with other options or inputs: enqueued again/);
      const lines = readOutput(output);
      assert.deepEqual(lines.map((l) => l.id).sort(), ['s1', 's2']);
      const fresh = await runItem(vlm!, listed[0]!, {}, GENERATION);
      assert.equal(lines.find((l) => l.id === 's1')!.text, (fresh as { text: string }).text);
      // Another batch's job (here: the junk one) is left where it is.
      assert.equal(await queue.getFailedCount(), 1);
    } finally {
      await worker?.stop(0);
      await queue.close();
    }
  });

  it('a worker stopped with no grace gives its jobs in flight back to the queue', async () => {
    const url = nextUrl();
    const input = writeInput('stop.jsonl', [{ id: 'long', image: 'images/horse.png' }]);
    const queue = queueAt(url);
    let worker: QueueWorker | undefined;
    try {
      const listed = await listAll(inputItems(openInput(input)));
      await enqueueItems(queue, listed, (item) => makePayload(item, {}, { ...GENERATION, maxNewTokens: 100_000 }));
      worker = await quietWorker(url, 1);
      for (let i = 0; (await queue.getActiveCount()) < 1; i++) {
        assert.ok(i < 500, 'the job starts');
        await new Promise((r) => setTimeout(r, 10));
      }
      await worker.stop(0);
      assert.equal(worker.stats.returned, 1);
      assert.equal(await queue.getJobState('item-long'), 'waiting');
      assert.equal(await queue.getCompletedCount(), 0);
    } finally {
      await worker?.stop(0);
      await queue.close();
    }
  });
});
