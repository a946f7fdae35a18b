// Continuous batching (src/generation/continuous-batching.ts, LlamaDecoder.forwardRows): N sequences
// decoded in one step give each row what decoding it alone gives, bit for bit on packed weights
// (packedMatvecRows + per-row attention) and within float32 tolerance on the tfjs layers; the batcher
// gives every request generateTokens' tokens whatever runs beside it, joins and leaves between steps,
// honours signals, stop checks and early exits, and frees every cache.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../src/backend/index.ts';
import { generateTokens, type TokenLoopResult, type TokenStep } from '../../src/generation/generate.ts';
import { BatcherClosedError, ContinuousBatcher, QueueFullError, type SequenceOptions } from '../../src/generation/continuous-batching.ts';
import { GREEDY } from '../../src/generation/sampler.ts';
import type { KVCache } from '../../src/layers/kv-cache.ts';
import type { GenerativeModel } from '../../src/models/decoder-model.ts';
import { TfvlmError } from '../../src/errors.ts';
import { loadModel, type LoadedModel } from '../../src/models/index.ts';
import { LlamaDecodeStep, withoutDecodeStep } from '../../src/models/llama/decode-step.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { fixture } from '../helpers/paths.ts';
import { PACKED_DECODER_CASES } from '../helpers/packed-decoders.ts';

const VOCAB_SAFE = 50; // ids below every tiny fixture's vocabulary size

/** Prompts of different lengths (so rows sit at different positions). */
function prompts(n: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: 3 + ((i * 5) % 9) }, (_, t) => 1 + ((i * 7 + t * 3) % VOCAB_SAFE)));
}

function prefilled(model: LoadedModel, ids: number[]): KVCache[] {
  const cache = model.createCache();
  const input = tf.tensor2d([ids], [1, ids.length], 'int32');
  const { logits } = model.forward({ input_ids: input }, { cache, lastOnly: true });
  tf.dispose([input, logits]);
  return cache;
}

/** Logits of one next token per sequence: all rows in one decodeRows step, or each alone (decodeLast). */
function nextLogits(model: LoadedModel, tokens: number[], caches: KVCache[][], together: boolean): Float32Array[] {
  const one = (ids: number[], cs: KVCache[][]) => {
    const input = tf.tensor2d(ids, [ids.length, 1], 'int32');
    const embeds = model.embed({ input_ids: input });
    const logits = together
      ? model.decodeRows(embeds, cs)
      : model.decodeLast(embeds, undefined, [cs[0]![0]!.offset], cs[0]!);
    const values = logits.dataSync() as Float32Array;
    const V = logits.shape[2]!;
    tf.dispose([input, embeds, logits]);
    return ids.map((_, r) => Float32Array.from(values.subarray(r * V, (r + 1) * V)));
  };
  return together ? one(tokens, caches) : tokens.flatMap((t, r) => one([t], [caches[r]!]));
}

async function drain(gen: AsyncGenerator<TokenStep, TokenLoopResult>): Promise<TokenLoopResult> {
  for (;;) {
    const r = await gen.next();
    if (r.done) return r.value;
  }
}

const options = (o: Partial<SequenceOptions> = {}): SequenceOptions => ({ ...GREEDY, seed: 0, maxNewTokens: 6, eosTokenIds: [], ...o });

describe('decodeRows', () => {
  before(async () => {
    await initBackend();
  });

  for (const [name, load] of PACKED_DECODER_CASES) {
    it(`${name} ${load.dtype ?? 'stored'}: five rows in one step, each bit for bit its step alone, three steps running`, async () => {
      const model = await loadModel(fixture(name), load);
      const before = tf.memory().numTensors;
      const ids = prompts(5);
      const alone = ids.map((p) => prefilled(model, p));
      const together = ids.map((p) => prefilled(model, p));
      let tokens = ids.map((p) => p[p.length - 1]!);
      let steps = 0;
      const run = LlamaDecodeStep.prototype.run;
      LlamaDecodeStep.prototype.run = function (this: LlamaDecodeStep, ...args: Parameters<typeof run>) {
        steps++;
        return run.apply(this, args);
      };
      try {
        for (let s = 0; s < 3; s++) {
          const a = nextLogits(model, tokens, alone, false);
          const b = nextLogits(model, tokens, together, true);
          for (let r = 0; r < tokens.length; r++) {
            assert.deepEqual(new Uint32Array(b[r]!.buffer), new Uint32Array(a[r]!.buffer), `step ${s}, row ${r}`);
          }
          tokens = a.map((l) => l.indexOf(Math.max(...l)));
        }
      } finally {
        LlamaDecodeStep.prototype.run = run;
      }
      assert.equal(steps, 6 * 3, 'every step took the packed decode step (5 alone + 1 together, 3 times)');
      assert.deepEqual(together.map((c) => c[0]!.offset), alone.map((c) => c[0]!.offset));
      for (const c of [...alone, ...together]) c.forEach((l) => l.dispose());
      assert.equal(tf.memory().numTensors, before);
      model.dispose();
    });
  }

  for (const name of ['tiny-smolvlm', 'tiny-llava']) {
    it(`${name} on the tfjs layers (float32 weights, and packed with the step off): each row within float32 tolerance of its step alone`, async () => {
      for (const [load, wrap] of [[{ weights: 'float32' }, <T>(f: () => T) => f()], [{}, withoutDecodeStep]] as const) {
        const model = await loadModel(fixture(name), load);
        const before = tf.memory().numTensors;
        const ids = prompts(4);
        const alone = ids.map((p) => prefilled(model, p));
        const together = ids.map((p) => prefilled(model, p));
        const tokens = ids.map((p) => p[p.length - 1]!);
        const a = wrap(() => nextLogits(model, tokens, alone, false));
        const b = wrap(() => nextLogits(model, tokens, together, true));
        for (let r = 0; r < tokens.length; r++) assertClose(b[r]!, a[r]!, TOLERANCE.float32, `row ${r}`);
        for (const c of [...alone, ...together]) c.forEach((l) => l.dispose());
        assert.equal(tf.memory().numTensors, before);
        model.dispose();
      }
    });
  }

  it('names a cache of the wrong depth and embeddings of the wrong shape', async () => {
    const model = await loadModel(fixture('tiny-smolvlm'));
    const caches = [model.createCache(), model.createCache().slice(1)];
    const embeds = tf.zeros([2, 1, model.text.config.hidden_size]);
    assert.throws(() => model.decodeRows(embeds, caches), /cache 1 has \d+ layers/);
    assert.throws(() => model.decodeRows(embeds, [caches[0]!]), /must be \[1, 1, \d+\] for 1 caches/);
    embeds.dispose();
    model.dispose();
  });
});

describe('ContinuousBatcher', () => {
  let model: LoadedModel;
  before(async () => {
    await initBackend();
    model = await loadModel(fixture('tiny-smolvlm'), { dtype: 'q8', groupSize: 32 });
  });

  async function sequential(ids: number[][], opts: SequenceOptions[]): Promise<TokenLoopResult[]> {
    const out: TokenLoopResult[] = [];
    for (const [i, p] of ids.entries()) out.push(await drain(generateTokens(model, { input_ids: [p] }, opts[i]!)));
    return out;
  }

  it('twelve concurrent sequences (greedy and seeded sampling, different lengths, eos) get the tokens each gets alone', async () => {
    const before = tf.memory().numTensors;
    const ids = prompts(12);
    const opts = ids.map((_, i) => options({
      maxNewTokens: 3 + (i % 5),
      ...(i % 3 === 0 ? { doSample: true, temperature: 0.9, topK: 20, seed: 100 + i } : {}),
      ...(i % 4 === 1 ? { repetitionPenalty: 1.3 } : {}),
    }));
    const alone = await sequential(ids, opts);
    // An eos that some sequences meet early: the third token one of them produced alone.
    const eos = alone[2]!.generated[0]![2]!;
    const withEos = opts.map((o) => ({ ...o, eosTokenIds: [eos] }));
    const aloneEos = await sequential(ids, withEos);
    const batcher = new ContinuousBatcher(model, { maxBatch: 5, maxQueue: 20 });
    const results = await Promise.all(ids.map((p, i) => drain(batcher.generate({ input_ids: [p] }, withEos[i]!))));
    for (const [i, r] of results.entries()) {
      assert.deepEqual(r.generated, aloneEos[i]!.generated, `sequence ${i}`);
      assert.equal(r.stopReason, aloneEos[i]!.stopReason, `sequence ${i}`);
    }
    assert.ok(batcher.stats.maxRows > 1 && batcher.stats.maxRows <= 5, `steps held up to ${batcher.stats.maxRows} rows`);
    assert.equal(tf.memory().numTensors, before);
  });

  it('a sequence joins between steps and leaves when it is done; the others go on', async () => {
    const batcher = new ContinuousBatcher(model, { maxBatch: 4 });
    const [p0, p1] = prompts(2);
    const [a0, a1] = await sequential([p0!, p1!], [options({ maxNewTokens: 10 }), options({ maxNewTokens: 2 })]);
    const first = batcher.generate({ input_ids: [p0!] }, options({ maxNewTokens: 10 }));
    const got: number[] = [];
    got.push((await first.next() as IteratorYieldResult<TokenStep>).value.tokens[0]!);
    got.push((await first.next() as IteratorYieldResult<TokenStep>).value.tokens[0]!);
    const second = await drain(batcher.generate({ input_ids: [p1!] }, options({ maxNewTokens: 2 })));
    const rest = await drain(first);
    assert.deepEqual([...got, ...rest.generated[0]!.slice(2)], a0!.generated[0]);
    assert.deepEqual(rest.generated, a0!.generated);
    assert.deepEqual(second.generated, a1!.generated);
  });

  it('leaving early, an abort and a stop check end a sequence with its cache freed; the rest are unchanged', async () => {
    const before = tf.memory().numTensors;
    const batcher = new ContinuousBatcher(model, { maxBatch: 4 });
    const ids = prompts(4);
    const [, , , a3] = await sequential(ids, ids.map(() => options({ maxNewTokens: 8 })));
    const controller = new AbortController();
    let seen = 0;
    const left = (async () => {
      for await (const step of batcher.generate({ input_ids: [ids[0]!] }, options({ maxNewTokens: 8 }))) if (step.step === 1) break;
    })();
    const aborted = (async () => {
      const gen = batcher.generate({ input_ids: [ids[1]!] }, options({ maxNewTokens: 8, signal: controller.signal }));
      await gen.next();
      controller.abort();
      return drain(gen);
    })();
    const stopped = drain(batcher.generate({ input_ids: [ids[2]!] }, options({ maxNewTokens: 8, shouldStop: () => ++seen >= 3 })));
    const full = drain(batcher.generate({ input_ids: [ids[3]!] }, options({ maxNewTokens: 8 })));
    await left;
    const [ab, st, fu] = await Promise.all([aborted, stopped, full]);
    assert.equal(ab.stopReason, 'aborted');
    assert.equal(ab.generated[0]!.length, 1);
    assert.equal(st.stopReason, 'stopped');
    assert.equal(st.generated[0]!.length, 3);
    assert.deepEqual(fu.generated, a3!.generated);
    await batcher.close();
    assert.equal(tf.memory().numTensors, before);
  });

  it('a sequence whose cache does not fit beside the running ones waits for them; alone, it fails with the check', async () => {
    const before = tf.memory().numTensors;
    const ids = prompts(3);
    const alone = await sequential(ids, ids.map(() => options({ maxNewTokens: 5 })));
    // The model's memory check, as if its heap held two sequences' caches at most.
    let full = false;
    let batcher: ContinuousBatcher | undefined;
    const tight: GenerativeModel = {
      maxPositions: model.maxPositions,
      embed: (inputs) => model.embed(inputs),
      decodeLast: (...args) => model.decodeLast(...args),
      decodeRows: (...args) => model.decodeRows(...args),
      createCache: (capacity) => model.createCache(capacity),
      checkPromptFits: () => {
        if (full || (batcher?.load.running ?? 0) >= 2) throw new TfvlmError('no room for its KV cache');
      },
    };
    batcher = new ContinuousBatcher(tight, { maxBatch: 3 });
    let most = 0;
    const results = await Promise.all(ids.map(async (p) => {
      const gen = batcher!.generate({ input_ids: [p] }, options({ maxNewTokens: 5 }));
      for (;;) {
        most = Math.max(most, batcher!.load.running);
        const r = await gen.next();
        if (r.done) return r.value;
      }
    }));
    assert.deepEqual(results.map((r) => r.generated), alone.map((r) => r.generated), 'the third ran once a place was free');
    assert.equal(most, 2);
    full = true; // nothing running, and still no room: the check's own error
    await assert.rejects(drain(batcher.generate({ input_ids: [ids[0]!] }, options())), /no room for its KV cache/);
    assert.equal(tf.memory().numTensors, before);
  });

  it('an aborted signal before the prefill gives an empty aborted result without running the model', async () => {
    const batcher = new ContinuousBatcher(model);
    const controller = new AbortController();
    controller.abort();
    const r = await drain(batcher.generate({ input_ids: [prompts(1)[0]!] }, options({ signal: controller.signal })));
    assert.equal(r.stopReason, 'aborted');
    assert.deepEqual(r.generated, [[]]);
    assert.equal(r.timings.prefillTokens, 0);
  });

  it('refuses past max_queue, a padded or batched prompt, one past the context window; close() turns the waiting away', async () => {
    const batcher = new ContinuousBatcher(model, { maxBatch: 1, maxQueue: 1 });
    const p = prompts(1)[0]!;
    const a = batcher.generate({ input_ids: [p] }, options({ maxNewTokens: 50 }));
    const b = batcher.generate({ input_ids: [p] }, options());
    const never = batcher.generate({ input_ids: [p] }, options());
    assert.deepEqual(batcher.load, { running: 0, waiting: 0 }, 'a sequence joins at its first next()');
    const firstA = a.next(); // joins now, synchronously
    const firstB = b.next();
    assert.deepEqual(batcher.load, { running: 0, waiting: 2 });
    assert.throws(() => batcher.generate({ input_ids: [p] }, options()), QueueFullError);
    await assert.rejects(never.next(), QueueFullError, 'the queue filled before its first next()');
    assert.throws(() => batcher.generate({ input_ids: [p, p] }, options()), /one prompt row, got 2/);
    assert.throws(() => batcher.generate({ input_ids: [p], attention_mask: [p.map((_, i) => (i ? 1 : 0))] }, options()), /unpadded/);
    assert.throws(() => batcher.generate({ input_ids: [new Array(model.maxPositions).fill(1)] }, options()), /context window/);
    await firstA;
    const closing = batcher.close();
    await assert.rejects(firstB, BatcherClosedError);
    assert.equal((await drain(a)).stopReason, 'aborted');
    await closing;
    assert.throws(() => batcher.generate({ input_ids: [p] }, options()), BatcherClosedError);
    assert.throws(() => new ContinuousBatcher(model, { maxBatch: 0 }), /maxBatch must be a whole number ≥ 1/);
  });
});
