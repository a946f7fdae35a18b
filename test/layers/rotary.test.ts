import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initBackend } from '../../src/backend/index.ts';
import { applyRotary, inverseFrequencies, rotaryTables, rotateHalf } from '../../src/layers/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { randomArray, take } from './util.ts';

/** Naive RoPE, Llama layout: pair (i, i + d/2) rotated by angle pos · θ^(−2i/d) / factor. */
function naiveRope(x: Float32Array, B: number, H: number, T: number, D: number, positions: number[], theta: number, factor = 1): number[] {
  const out = new Array<number>(x.length);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) {
    const base = ((b * H + h) * T + t) * D;
    const pos = positions[b * T + t]!;
    for (let i = 0; i < D / 2; i++) {
      const angle = (pos / factor) * Math.pow(theta, (-2 * i) / D);
      const a = x[base + i]!, c = x[base + i + D / 2]!;
      out[base + i] = a * Math.cos(angle) - c * Math.sin(angle);
      out[base + i + D / 2] = c * Math.cos(angle) + a * Math.sin(angle);
    }
  }
  return out;
}

describe('rotary', () => {
  before(async () => { await initBackend(); });

  it('rotate_half([1, 2, 3, 4]) = [-3, -4, 1, 2]', () => {
    assertClose(take(rotateHalf(tf.tensor1d([1, 2, 3, 4]))), [-3, -4, 1, 2], TOLERANCE.exact);
  });

  it('matches the naive per-element formula (incl. per-row positions)', () => {
    const B = 2, H = 3, T = 5, D = 8, theta = 100000;
    const x = randomArray(B * H * T * D, 11);
    const positions = [0, 1, 2, 3, 4, 7, 8, 9, 10, 300];
    const tables = rotaryTables(inverseFrequencies({ dim: D, rope_theta: theta }), positions, B, T);
    const y = applyRotary(tf.tensor4d(x, [B, H, T, D]), tables);
    assertClose(take(y), naiveRope(x, B, H, T, D, positions, theta), TOLERANCE.float32);
    tables.cos.dispose(); tables.sin.dispose();
  });

  it('linear scaling divides the frequencies by factor (both key spellings)', () => {
    const B = 1, H = 1, T = 4, D = 4, theta = 10000;
    const x = randomArray(T * D, 12);
    const positions = [0, 5, 17, 1000];
    for (const scaling of [{ type: 'linear', factor: 4 }, { rope_type: 'linear', factor: 4 }]) {
      const tables = rotaryTables(inverseFrequencies({ dim: D, rope_theta: theta, rope_scaling: scaling }), positions, B, T);
      const y = applyRotary(tf.tensor4d(x, [B, H, T, D]), tables);
      assertClose(take(y), naiveRope(x, B, H, T, D, positions, theta, 4), TOLERANCE.float32);
      tables.cos.dispose(); tables.sin.dispose();
    }
  });

  it('unsupported rope types and bad factors throw TfvlmError', () => {
    assert.throws(() => inverseFrequencies({ dim: 4, rope_theta: 1e4, rope_scaling: { rope_type: 'yarn', factor: 2 } }), TfvlmError);
    assert.throws(() => inverseFrequencies({ dim: 4, rope_theta: 1e4, rope_scaling: { type: 'linear' } }), TfvlmError);
    assert.throws(() => inverseFrequencies({ dim: 5, rope_theta: 1e4 }), TfvlmError);
  });
});
