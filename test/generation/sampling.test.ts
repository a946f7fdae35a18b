import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.ts';
import { sampleToken, GREEDY, type SamplingOptions } from '../../src/generation/sampler.ts';
import {
  applyMinP, applyRepetitionPenalty, applyTopK, applyTopP, softmax,
} from '../../src/generation/logits-processors.ts';
import { StopStringMatcher } from '../../src/generation/stop-strings.ts';
import { resolveGenerateOptions } from '../../src/generation/generation-config.ts';

const sampled = (o: Partial<SamplingOptions>): SamplingOptions => ({ ...GREEDY, doSample: true, ...o });

describe('Rng', () => {
  it('is reproducible per seed and differs across seeds', () => {
    const a = new Rng(42), b = new Rng(42), c = new Rng(43);
    const xs = Array.from({ length: 8 }, () => a.next());
    assert.deepEqual(xs, Array.from({ length: 8 }, () => b.next()));
    assert.notDeepEqual(xs, Array.from({ length: 8 }, () => c.next()));
    for (const x of xs) assert.ok(x >= 0 && x < 1);
  });

  it('is roughly uniform', () => {
    const r = new Rng(1);
    const bins = new Array(10).fill(0);
    for (let i = 0; i < 20000; i++) bins[Math.floor(r.next() * 10)]++;
    for (const n of bins) assert.ok(Math.abs(n - 2000) < 200, `bin count ${n}`);
  });
});

describe('logits processors (transformers semantics)', () => {
  it('repetition penalty divides positive and multiplies negative logits, once per token', () => {
    const l = Float32Array.from([2, -2, 1]);
    applyRepetitionPenalty(l, [0, 1, 0], 2);
    assert.deepEqual(Array.from(l), [1, -4, 1]);
  });

  it('top-k keeps the k largest', () => {
    const l = Float32Array.from([1, 5, 3, 4]);
    applyTopK(l, 2);
    assert.deepEqual(Array.from(l), [-Infinity, 5, -Infinity, 4]);
  });

  it('top-p keeps the smallest set whose mass exceeds p', () => {
    // probs ≈ [0.643, 0.237, 0.087, 0.032]
    const l = Float32Array.from([3, 2, 1, 0]);
    applyTopP(l, 0.8);
    assert.deepEqual(Array.from(l).map(Number.isFinite), [true, true, false, false]);
    const one = Float32Array.from([3, 2, 1, 0]);
    applyTopP(one, 0.01);
    assert.deepEqual(Array.from(one).map(Number.isFinite), [true, false, false, false]);
  });

  it('min-p drops tokens below min_p × top probability', () => {
    const l = Float32Array.from([3, 2, 1, 0]);
    applyMinP(l, 0.3); // top 0.643 → threshold 0.193: keeps 0.643, 0.237
    assert.deepEqual(Array.from(l).map(Number.isFinite), [true, true, false, false]);
  });
});

describe('sampleToken', () => {
  it('greedy is argmax, and temperature 0 means greedy', () => {
    const rng = new Rng(0);
    assert.equal(sampleToken(Float32Array.from([0, 3, 1]), [], GREEDY, rng), 1);
    assert.equal(sampleToken(Float32Array.from([0, 3, 1]), [], sampled({ temperature: 0 }), rng), 1);
  });

  it('sampling follows the distribution and is seed-reproducible', () => {
    const logits = Float32Array.from([0, Math.log(3), -Infinity]);
    const draw = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 4000 }, () => sampleToken(Float32Array.from(logits), [], sampled({}), rng));
    };
    const a = draw(7);
    assert.deepEqual(a, draw(7));
    assert.notDeepEqual(a, draw(8));
    const ones = a.filter((x) => x === 1).length / a.length;
    assert.ok(Math.abs(ones - 0.75) < 0.03, `P(1) = ${ones}`);
    assert.ok(!a.includes(2));
  });

  it('softmax ignores -Infinity', () => {
    const p = softmax(Float32Array.from([0, -Infinity, 0]));
    assert.deepEqual(Array.from(p), [0.5, 0, 0.5]);
  });
});

describe('StopStringMatcher', () => {
  it('stops on a string split across deltas and never shows any of it', () => {
    const m = new StopStringMatcher(['</answer>']);
    let shown = '';
    for (const d of ['The cat', ' sat</an', 'swer> more']) shown += m.push(d);
    assert.equal(m.stopped, true);
    assert.equal(shown, 'The cat sat');
    assert.equal(m.flush(), '');
  });

  it('releases held-back text that turns out not to be a stop string', () => {
    const m = new StopStringMatcher(['STOP']);
    assert.equal(m.push('abc ST'), 'abc ');
    assert.equal(m.push('ART'), 'START');
    assert.equal(m.push(' S'), ' ');
    assert.equal(m.flush(), 'S');
    assert.equal(m.output, 'abc START S');
  });

  it('picks the earliest of several stop strings', () => {
    const m = new StopStringMatcher(['bb', 'a']);
    assert.equal(m.push('xxbba'), 'xx');
  });
});

describe('resolveGenerateOptions', () => {
  it('layers transformers defaults, generation_config.json and overrides', () => {
    const o = resolveGenerateOptions({ eos_token_id: [2, 5], top_k: 20, do_sample: true }, { topK: 3 }, [5, 9]);
    assert.equal(o.topK, 3);
    assert.equal(o.doSample, true);
    assert.equal(o.topP, 1);
    assert.deepEqual(o.eosTokenIds, [2, 5, 9]);
  });

  it('names a bad option', () => {
    assert.throws(() => resolveGenerateOptions({}, { topP: 0 }), /top_p must be in \(0, 1\], got 0/);
    assert.throws(() => resolveGenerateOptions({}, { maxNewTokens: -1 }), /max_new_tokens/);
  });
});
