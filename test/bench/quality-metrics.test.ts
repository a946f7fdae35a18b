// The quantization-quality metrics of bench/quality.ts (bench/lib/quality-metrics.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  agreementCount, argmax, compareLogits, klDivergence, logSoftmax, quantile, sameAnswers,
} from '../../bench/lib/quality-metrics.ts';

describe('quality metrics', () => {
  it('log-softmax is normalised and shift-invariant', () => {
    const a = logSoftmax([1, 2, 3]);
    const b = logSoftmax([101, 102, 103]);
    assert.ok(Math.abs(a.reduce((s, x) => s + Math.exp(x), 0) - 1) < 1e-15);
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-12);
    // A row inside a larger block.
    assert.deepEqual([...logSoftmax([9, 9, 1, 2, 3], 2, 3)], [...a]);
  });

  it('KL of identical distributions is 0 (also with large logits)', () => {
    assert.equal(klDivergence([0.3, -1.2, 4, 0], [0.3, -1.2, 4, 0]), 0);
    assert.equal(klDivergence([1000, -1000, 999], [1000, -1000, 999]), 0);
    // Shifting every logit leaves the distribution (and KL = 0) unchanged.
    assert.ok(Math.abs(klDivergence([1, 2, 3], [11, 12, 13])) < 1e-12);
  });

  it('KL against a hand-computed two-class example', () => {
    // P = (0.5, 0.5) from logits (0, 0); Q = (0.8, 0.2) from logits (ln 0.8, ln 0.2).
    // KL(P‖Q) = 0.5 ln(0.5/0.8) + 0.5 ln(0.5/0.2) = 0.5 ln(0.25/0.16) = ln(1.25) ≈ 0.22314 nats.
    const kl = klDivergence([0, 0], [Math.log(0.8), Math.log(0.2)]);
    assert.ok(Math.abs(kl - Math.log(1.25)) < 1e-12, `${kl}`);
    // Not symmetric: KL(Q‖P) = 0.8 ln 1.6 + 0.2 ln 0.4.
    const back = klDivergence([Math.log(0.8), Math.log(0.2)], [0, 0]);
    assert.ok(Math.abs(back - (0.8 * Math.log(1.6) + 0.2 * Math.log(0.4))) < 1e-12, `${back}`);
  });

  it('KL skips classes P gives no mass', () => {
    assert.equal(klDivergence([0, -Infinity], [0, -Infinity]), 0);
    assert.ok(Math.abs(klDivergence([0, -Infinity], [0, 0]) - Math.log(2)) < 1e-12);
  });

  it('agreement counts equal tokens position by position', () => {
    assert.equal(agreementCount([1, 2, 3, 4], [1, 2, 0, 4]), 3);
    assert.equal(agreementCount([], []), 0);
    assert.throws(() => agreementCount([1], [1, 2]));
    assert.equal(argmax([0, 5, 5, 1]), 1); // first of a tie
    assert.equal(argmax([9, 0, 5, 7], 1, 3), 2);
  });

  it('quantile interpolates linearly', () => {
    assert.equal(quantile([3, 1, 2, 4], 0), 1);
    assert.equal(quantile([3, 1, 2, 4], 1), 4);
    assert.equal(quantile([3, 1, 2, 4], 0.5), 2.5);
    assert.ok(Math.abs(quantile([0, 10], 0.99) - 9.9) < 1e-12);
  });

  it('compareLogits over a block of positions', () => {
    const vocab = 3;
    const full = Float32Array.from([0, 1, 2, /**/ 5, 0, 0, /**/ 0, 0, 1]);
    const quant = Float32Array.from([0, 1, 2, /**/ 0, 5, 0, /**/ 0, 0, 1.5]);
    const c = compareLogits(full, quant, vocab);
    assert.equal(c.positions, 3);
    assert.deepEqual(c.full_argmax, [2, 0, 2]);
    assert.deepEqual(c.quant_argmax, [2, 1, 2]);
    assert.equal(c.agree, 2);
    assert.equal(c.kl[0], 0);
    assert.ok(Math.abs(c.kl[1]! - klDivergence([5, 0, 0], [0, 5, 0])) < 1e-12);
    assert.equal(c.max_kl, c.kl[1]);
    assert.ok(Math.abs(c.mean_kl - (c.kl[1]! + c.kl[2]!) / 3) < 1e-15);
    assert.equal(c.max_abs_dlogit, 5);
    assert.throws(() => compareLogits(full, quant.subarray(0, 6), vocab));
  });

  it('sameAnswers compares strings exactly', () => {
    assert.deepEqual(sameAnswers(['a', 'b', 'c', 'd'], ['a', 'b ', 'c', 'x']), { same: 2, total: 4, fraction: 0.5 });
  });
});
