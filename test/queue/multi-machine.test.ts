// Issue 27's multi-machine test, with real processes: `tfvlm batch --queue` (the collector) and three
// `tfvlm worker`s on a redis-server of our own. 60 items; the collector is killed with SIGKILL after its
// first lines and a worker with SIGKILL in the middle of a job; two more workers take over (the dead
// one's job through BullMQ's stalled-job recovery) while no collector runs; the collector restarted
// once writes the rest. Every item is in the output exactly once, with the text of the single-process
// `tfvlm batch` run, and nothing is left in Redis.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { fixture, image } from '../helpers/paths.ts';
import { QUEUE_DEFAULTS } from '../../src/queue/defaults.ts';
import { jobIdOf } from '../../src/queue/payload.ts';
import { redisMissing, startRedis, type TestRedis } from './redis-server.ts';

const BIN = fileURLToPath(new URL('../../bin/tfvlm.js', import.meta.url));
const MODEL = fixture('tiny-smolvlm');
const GENERATION = ['--greedy', '--max-new-tokens', '16', '--image-splitting', 'off'];
/**
 * Locks of 3 s, checked every second: a dead worker's job is taken over within a few seconds. A live
 * worker starved of CPU for over 1.5 s (other test files run beside this one) may lose a lock too; its
 * job is then done twice but written once, and --max-stalled 5 keeps such a job from failing.
 */
const FAST_RECOVERY = ['--lock-duration', '3', '--stalled-interval', '1', '--max-stalled', '5'];
const IMAGES = ['horse.png', 'chelsea.png', 'astronaut.png', 'camera.png', 'rocket.jpg'];
const ENV = { ...process.env, TFVLM_MODEL: '', TFVLM_KERNEL_THREADS: '1' };

const skip = redisMissing();
let redis: TestRedis | undefined;
let tmp: string;
const children = new Set<ChildProcess>();

interface Proc {
  child: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
}

function tfvlm(args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: ENV });
  children.add(child);
  let log = '';
  child.stderr?.on('data', (d) => { log += String(d); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    children.delete(child);
    resolve(code);
  }));
  return { child, log: () => log.split('\n').filter((l) => !/already registered/.test(l)).join('\n'), exited };
}

const readLines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '').split('\n').filter(Boolean);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, ms: number, probe: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-queue-'));
  if (skip) return;
  redis = await startRedis();
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await redis?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('tfvlm batch --queue + tfvlm worker', { skip }, () => {
  it('60 items, 3 workers (one SIGKILLed mid-job), the collector SIGKILLed and restarted: every item once, texts as the local batch', async (t) => {
    const started = Date.now();
    fs.mkdirSync(path.join(tmp, 'images'));
    for (const name of IMAGES) fs.copyFileSync(image(name), path.join(tmp, 'images', name));
    // Ids BullMQ would refuse as job ids ("12": an integer; "img:4": a colon) are items like any other.
    const items = Array.from({ length: 60 }, (_, i) => ({
      id: i % 3 === 0 ? String(i) : i % 3 === 1 ? `img:${i}` : `dir/${i}.png`,
      image: `images/${IMAGES[i % IMAGES.length]!}`,
    }));
    const input = path.join(tmp, 'items.jsonl');
    fs.writeFileSync(input, items.map((i) => JSON.stringify(i)).join('\n') + '\n');

    // The reference: one process, the local batcher.
    const reference = path.join(tmp, 'reference.jsonl');
    const local = spawnSync(process.execPath, [BIN, 'batch', '--input', input, '--output', reference, '--model', MODEL, ...GENERATION, '-q'], { encoding: 'utf8', env: ENV });
    assert.equal(local.status, 0, local.stderr);
    const expected = new Map(readLines(reference).map((l) => JSON.parse(l) as { id: string; text: string }).map((l) => [l.id, l.text]));
    assert.equal(expected.size, 60);
    t.diagnostic(`local batch: ${Date.now() - started} ms`);

    const url = redis!.url(1);
    const output = path.join(tmp, 'out', 'results.jsonl');
    const collectorArgs = ['batch', '--queue', url, '--input', input, '--output', output, ...GENERATION];
    const queue = new Queue(QUEUE_DEFAULTS.queueName, { connection: { host: '127.0.0.1', port: redis!.port, db: 1 } });
    try {
      // Collector 1 and the first worker (one job at a time).
      const collector1 = tfvlm(collectorArgs);
      const w0 = tfvlm(['worker', '--queue', url, '--model', MODEL, '--concurrency', '1', '--name', 'w0', ...FAST_RECOVERY]);
      await until('the first 3 lines', 60_000, () => readLines(output).length >= 3);
      // Freeze the worker (its lock stops being renewed, nothing changes under us), kill the collector.
      w0.child.kill('SIGSTOP');
      collector1.child.kill('SIGKILL');
      assert.equal(await collector1.exited, null);
      const linesAtKill = readLines(output).length;
      // The worker dies holding a job: frozen, check it has one; if it is between two jobs, let it run a moment.
      const killedJob = await until('w0 in the middle of a job', 10_000, async () => {
        const mine = (await queue.getActive()).filter((job) => job.processedBy === 'w0');
        if (mine.length > 0) return mine[0]!.id!;
        w0.child.kill('SIGCONT');
        await sleep(3);
        w0.child.kill('SIGSTOP');
        await sleep(20);
        return undefined;
      });
      w0.child.kill('SIGKILL');
      await w0.exited;
      t.diagnostic(`collector killed after ${linesAtKill} lines; w0 killed in job ${killedJob} at ${Date.now() - started} ms`);

      // Two more workers, two jobs each; while no collector runs, their results wait in Redis.
      const w1 = tfvlm(['worker', '--queue', url, '--model', MODEL, '--concurrency', '2', '--name', 'w1', ...FAST_RECOVERY]);
      const w2 = tfvlm(['worker', '--queue', url, '--model', MODEL, '--concurrency', '2', '--name', 'w2', ...FAST_RECOVERY]);
      const completedWhileDown = await until('jobs finished with no collector', 60_000, async () => {
        const n = await queue.getCompletedCount();
        return n >= 10 && n;
      });
      // The dead worker's job went back to the queue through a stalled check of w1 or w2.
      await until(`job ${killedJob} recovered`, 30_000, async () => {
        const job = await queue.getJob(killedJob);
        return job !== undefined && (await job.getState()) !== 'active';
      });

      const collector2 = tfvlm(collectorArgs);
      const deadline = setTimeout(() => collector2.child.kill('SIGKILL'), 90_000);
      const code = await collector2.exited;
      clearTimeout(deadline);
      assert.equal(code, 0, collector2.log());
      assert.match(collector2.log(), new RegExp(`skipped ${linesAtKill} already in`));
      t.diagnostic(`${completedWhileDown} jobs had finished while no collector ran; all done at ${Date.now() - started} ms`);

      // QUEUE_TEST_LOGS=1 prints what every process said.
      if (process.env.QUEUE_TEST_LOGS) console.error(collector1.log(), w0.log(), w1.log(), w2.log(), collector2.log());
      // Every item exactly once, each with the single-process text.
      const lines = readLines(output).map((l) => JSON.parse(l) as { id: string; text?: string; error?: string });
      assert.equal(lines.length, 60);
      assert.deepEqual(lines.map((l) => l.id).sort(), items.map((i) => i.id).sort());
      for (const line of lines) {
        assert.equal(line.error, undefined, `${line.id}: ${line.error}`);
        assert.equal(line.text, expected.get(line.id), line.id);
      }
      assert.ok(items.some((i) => jobIdOf(i.id) === killedJob), `the killed job ${killedJob} is one of the items`);
      assert.match(w1.log() + w2.log(), new RegExp(`job ${killedJob.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} had stalled`));
      // Each job was removed once its line was on disk.
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
      assert.deepEqual(Object.values(counts).filter((n) => n > 0), [], JSON.stringify(counts));

      // SIGTERM: the idle workers stop cleanly.
      w1.child.kill('SIGTERM');
      w2.child.kill('SIGTERM');
      assert.deepEqual(await Promise.all([w1.exited, w2.exited]), [0, 0], w1.log() + w2.log());
      assert.match(w1.log(), /SIGTERM: taking no more jobs[\s\S]*stopped/);
    } finally {
      await queue.close();
    }
  });
});
