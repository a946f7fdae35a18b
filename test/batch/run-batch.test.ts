// The batch loop on the tiny SmolVLM fixture through a VlmBatcher: one line per item, each text the
// one vlm.generate gives the same request alone (greedy), resumed runs doing only what is missing, a
// torn last line redone, failing items written as errors while the run goes on, no tensor growth.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tf } from '../../src/backend/index.ts';
import { Vlm, type GenerateCallOptions, type GenerationOutput, type VlmRequest } from '../../src/engine.ts';
import { VlmBatcher } from '../../src/vlm-batcher.ts';
import { openInput, type BatchItem } from '../../src/batch/input.ts';
import { itemRequest, type ItemGenerator } from '../../src/batch/item.ts';
import { planBatch } from '../../src/batch/plan.ts';
import { ResultsWriter } from '../../src/batch/results-file.ts';
import { runBatch, type RunBatchOptions } from '../../src/batch/run-batch.ts';
import { fixture, image } from '../helpers/paths.ts';

const GENERATION = { maxNewTokens: 6, doSample: false, imageSplitting: false } as const;
const PICTURES: [string, string][] = [
  ['small.png', fixture('tiny-smolvlm', 'golden', 'inputs', 'small_64x48.png')],
  ['wide.png', fixture('tiny-smolvlm', 'golden', 'inputs', 'wide_150x100.png')],
  ['tall.png', fixture('tiny-smolvlm', 'golden', 'inputs', 'tall_80x120.png')],
  ['b.png', fixture('tiny-smolvlm', 'golden', 'inputs', 'batch_b_160x40.png')],
  ['horse.png', image('horse.png')],
  ['rocket.jpg', image('rocket.jpg')],
];

let tmp: string;
let vlm: Vlm;
let batcher: VlmBatcher;
let input: string;
let ids: string[];

/** A generator that counts the requests it is given. */
function counting(inner: ItemGenerator): ItemGenerator & { calls: number } {
  const g = {
    calls: 0,
    generate(request: VlmRequest, options?: GenerateCallOptions): Promise<GenerationOutput> {
      g.calls++;
      return inner.generate(request, options);
    },
  };
  return g;
}

/** plan + runBatch into `output`, as the CLI does it; returns the summary and the requests made. */
async function batch(output: string, options: Partial<RunBatchOptions> & { retryErrors?: boolean; file?: string } = {}) {
  const plan = await planBatch({ input: openInput(options.file ?? input), output, retryErrors: options.retryErrors });
  const generator = counting(batcher);
  const writer = ResultsWriter.open(output);
  try {
    const summary = await runBatch(generator, plan.items(), (line) => writer.append(line), { generation: GENERATION, maxInFlight: 6, ...options });
    return { plan, summary, calls: generator.calls };
  } finally {
    writer.close();
  }
}

const readOutput = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-batch-run-'));
  fs.mkdirSync(path.join(tmp, 'images'));
  for (const [name, from] of PICTURES) fs.copyFileSync(from, path.join(tmp, 'images', name));
  const items = [
    ...PICTURES.map(([name], i) => ({ id: `p${i}`, image: `images/${name}` })),
    { id: 'two', images: ['images/small.png', 'images/tall.png'], prompt: 'Compare them.' },
    { id: 'q', image: 'images/wide.png', question: 'What is in the picture?' },
  ];
  ids = items.map((i) => i.id);
  input = path.join(tmp, 'items.jsonl');
  fs.writeFileSync(input, items.map((i) => JSON.stringify(i)).join('\n') + '\n');
  vlm = await Vlm.load(fixture('tiny-smolvlm'));
  batcher = new VlmBatcher(vlm, { maxBatch: 4, maxQueue: 8 });
});
after(async () => {
  await batcher?.close();
  vlm?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('runBatch', () => {
  let full: Record<string, unknown>[];

  it('writes one line per item with its keys, each text the one vlm.generate gives the same request alone', async () => {
    const output = path.join(tmp, 'full.jsonl');
    const { summary, calls, plan } = await batch(output);
    assert.deepEqual(summary, { written: ids.length, failed: 0, aborted: false });
    assert.equal(calls, ids.length);
    assert.ok(batcher.stats.maxRows > 1, `decode steps held at most ${batcher.stats.maxRows} sequence(s)`);
    full = readOutput(output);
    assert.deepEqual(full.map((l) => l.id).sort(), [...ids].sort());
    const byId = new Map(full.map((l) => [l.id as string, l]));
    assert.deepEqual(Object.keys(byId.get('p0')!), ['id', 'image', 'text', 'generated_tokens', 'stop_reason', 'timings']);
    assert.deepEqual(Object.keys(byId.get('p0')!.timings as object), ['embed_ms', 'prefill_ms', 'prefill_tokens', 'decode_ms', 'decode_tokens']);
    assert.equal(byId.get('p0')!.image, 'images/small.png');
    assert.deepEqual(byId.get('two')!.images, ['images/small.png', 'images/tall.png']);
    const items: BatchItem[] = [];
    for await (const item of (await planBatch({ input: openInput(input), output: path.join(tmp, 'none.jsonl') })).items()) items.push(item);
    assert.equal(plan.todo, items.length);
    for (const item of items) {
      const alone = await vlm.generate(itemRequest(item), GENERATION);
      const line = byId.get(item.id)!;
      assert.equal(line.text, alone.text, item.id);
      assert.equal(line.generated_tokens, alone.generatedIds.length, item.id);
      assert.equal(line.stop_reason, alone.stopReason, item.id);
    }
    // The item's own prompt and question reach the model.
    const q = items.find((i) => i.id === 'q')!;
    assert.deepEqual(itemRequest(q, { prompt: 'ignored' }), itemRequest({ ...q, question: undefined, prompt: 'What is in the picture?' }));
    assert.match(JSON.stringify(itemRequest(items[0]!)), /Describe this image\./);
    assert.match(JSON.stringify(itemRequest(items[0]!, { question: 'Why?' })), /"text":"Why\?"/);
  });

  it('a rerun does only the items without a line', async () => {
    const output = path.join(tmp, 'resume.jsonl');
    fs.writeFileSync(output, full.slice(0, 3).map((l) => `${JSON.stringify(l)}\n`).join(''));
    const { plan, calls } = await batch(output);
    assert.equal(plan.skipped, 3);
    assert.equal(calls, ids.length - 3);
    const lines = readOutput(output);
    assert.deepEqual(lines.map((l) => l.id).sort(), [...ids].sort());
    const again = await batch(output);
    assert.equal(again.calls, 0);
    assert.equal(again.plan.skipped, ids.length);
  });

  it('a torn last line is cut off and its item redone', async () => {
    const output = path.join(tmp, 'torn.jsonl');
    const keep = full.slice(0, -1).map((l) => `${JSON.stringify(l)}\n`).join('');
    const last = full.at(-1)!;
    fs.writeFileSync(output, keep + JSON.stringify(last).slice(0, 25));
    const { plan, calls } = await batch(output);
    assert.equal(plan.repaired?.line, ids.length);
    assert.equal(calls, 1);
    const lines = readOutput(output);
    assert.equal(lines.length, ids.length);
    assert.deepEqual(lines.at(-1), { ...last, timings: lines.at(-1)!.timings });
  });

  it('a failing item (missing file, corrupt image, image over the pixel budget) is an error line and the run goes on', async () => {
    fs.writeFileSync(path.join(tmp, 'images', 'corrupt.png'), Buffer.concat([fs.readFileSync(path.join(tmp, 'images', 'small.png')).subarray(0, 40), Buffer.alloc(64, 7)]));
    const file = path.join(tmp, 'failing.jsonl');
    const items = [
      { id: 'ok1', image: 'images/small.png' }, { id: 'missing', image: 'images/nope.png' },
      { id: 'corrupt', image: 'images/corrupt.png' }, { id: 'big', image: 'images/horse.png' }, { id: 'ok2', image: 'images/tall.png' },
    ];
    fs.writeFileSync(file, items.map((i) => JSON.stringify(i)).join('\n'));
    const output = path.join(tmp, 'failing-out.jsonl');
    // horse.png is 400×328 = 131,200 pixels.
    const { summary } = await batch(output, { file, generation: { ...GENERATION, maxImagePixels: 100_000 } });
    assert.deepEqual(summary, { written: 5, failed: 3, aborted: false });
    const byId = new Map(readOutput(output).map((l) => [l.id, l]));
    assert.equal(typeof byId.get('ok1')!.text, 'string');
    assert.equal(typeof byId.get('ok2')!.text, 'string');
    assert.deepEqual(Object.keys(byId.get('missing')!), ['id', 'image', 'error']);
    assert.match(byId.get('missing')!.error as string, /nope\.png/);
    assert.match(byId.get('corrupt')!.error as string, /corrupt\.png/);
    assert.match(byId.get('big')!.error as string, /131,?200|pixels/);
    // Errors count as done, unless --retry-errors.
    assert.equal((await batch(output, { file })).calls, 0);
    const retry = await batch(output, { file, retryErrors: true });
    assert.equal(retry.calls, 3);
    assert.equal(retry.summary.failed, 2); // the budget is the default now: horse.png passes
    assert.equal(readOutput(output).length, 5);
  });

  it('a stop ends the run: the items in flight get no line, and a rerun does them', async () => {
    const output = path.join(tmp, 'stopped.jsonl');
    const stop = new AbortController();
    const first = await batch(output, { signal: stop.signal, onLine: () => stop.abort() });
    assert.equal(first.summary.aborted, true);
    assert.ok(first.summary.written >= 1 && first.summary.written < ids.length, `${first.summary.written} written`);
    const rest = await batch(output);
    assert.equal(rest.calls, ids.length - first.summary.written);
    assert.deepEqual(readOutput(output).map((l) => l.id).sort(), [...ids].sort());
  });

  it('a failing write stops the run and is thrown', async () => {
    const plan = await planBatch({ input: openInput(input), output: path.join(tmp, 'unwritten.jsonl') });
    let writes = 0;
    const write = () => {
      if (++writes === 2) throw new Error('ENOSPC: no space left on device');
    };
    await assert.rejects(runBatch(batcher, plan.items(), write, { generation: GENERATION, maxInFlight: 6 }), /ENOSPC/);
    assert.equal(writes, 2);
  });

  it('leaves no tensors behind', async () => {
    const before = tf.memory().numTensors;
    await batch(path.join(tmp, 'leak.jsonl'));
    assert.equal(tf.memory().numTensors, before);
  });
});
