import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initBackend } from '../../src/backend/index.ts';
import { causalMask, paddingMask, scaledDotProductAttention } from '../../src/layers/index.ts';
import {
  ATTENTION_KERNELS, batchedAttention, decodeAttention, flashAttention, gqaGroupedAttention, gqaRepeatAttention,
  repeatKV, type AttentionKernel,
} from '../../bench/lib/attention-variants.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { randomTensor, take } from '../layers/util.ts';

interface Case {
  name: string;
  B: number;
  H: number;
  Hkv: number;
  T: number;
  S: number;
  D: number;
  mask?: () => tf.Tensor | undefined;
}

const CASES: Case[] = [
  { name: 'MHA, no mask', B: 2, H: 4, Hkv: 4, T: 7, S: 7, D: 8 },
  { name: 'GQA, causal', B: 1, H: 6, Hkv: 2, T: 9, S: 9, D: 16, mask: () => causalMask({ batch: 1, queryLen: 9, offset: 0 }) },
  {
    name: 'GQA, causal over a cache with left padding (fully masked rows)',
    B: 2, H: 4, Hkv: 2, T: 5, S: 13, D: 8,
    mask: () => causalMask({ batch: 2, queryLen: 5, offset: 8, keyMask: [...Array(13).fill(1), ...Array(10).fill(0), 1, 1, 1] }),
  },
  {
    name: 'MHA, key padding mask [B,1,1,S]',
    B: 2, H: 3, Hkv: 3, T: 6, S: 6, D: 8,
    mask: () => paddingMask([1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1], 2, 6),
  },
  { name: 'decode T=1, GQA, no mask', B: 1, H: 9, Hkv: 3, T: 1, S: 37, D: 16 },
  {
    name: 'decode T=1, GQA, padding',
    B: 2, H: 4, Hkv: 2, T: 1, S: 11, D: 8,
    mask: () => causalMask({ batch: 2, queryLen: 1, offset: 10, keyMask: [...Array(11).fill(1), 0, 0, 0, ...Array(8).fill(1)] }),
  },
];

function run(kernel: AttentionKernel, c: Case, seed: number): { out: Float32Array; ref: Float32Array } {
  const q = randomTensor([c.B, c.H, c.T, c.D], seed, 2);
  const k = randomTensor([c.B, c.Hkv, c.S, c.D], seed + 1, 2);
  const v = randomTensor([c.B, c.Hkv, c.S, c.D], seed + 2);
  const mask = c.mask?.();
  const scale = 1 / Math.sqrt(c.D);
  try {
    const ref = take(scaledDotProductAttention(q, k, v, mask, scale));
    const out = kernel(q, k, v, mask, scale);
    assert.deepEqual(out.shape, [c.B, c.H, c.T, c.D]);
    return { out: take(out), ref };
  } finally {
    tf.dispose([q, k, v, ...(mask ? [mask] : [])]);
  }
}

describe('attention variants equal the reference kernel', () => {
  before(async () => {
    await initBackend();
  });

  const kernels: [string, AttentionKernel, boolean][] = [
    ['batched', batchedAttention, false],
    ['flash (block 4)', flashAttention(4), false],
    ['flash (block 256)', flashAttention(256), false],
    ['gqa-repeat', gqaRepeatAttention, false],
    ['gqa-grouped', gqaGroupedAttention, false],
    ['decode', decodeAttention, true],
  ];
  for (const [name, kernel, decodeOnly] of kernels) {
    for (const c of CASES) {
      if (decodeOnly && c.T !== 1) continue;
      it(`${name}: ${c.name}`, () => {
        const before = tf.memory().numTensors;
        const { out, ref } = run(kernel, c, 11);
        assertClose(out, ref, TOLERANCE.float32, `${name} ${c.name}`);
        assert.equal(tf.memory().numTensors, before);
      });
    }
  }

  it('every registered kernel is covered', () => {
    assert.deepEqual(Object.keys(ATTENTION_KERNELS).sort(), ['batched', 'decode', 'flash', 'gqa-grouped', 'gqa-repeat', 'reference']);
  });

  it('repeatKV repeats each kv head in place (transformers order)', () => {
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 1, 2]);
    assert.deepEqual(Array.from(take(repeatKV(x, 2))), [1, 2, 1, 2, 3, 4, 3, 4]);
    x.dispose();
  });

  it('rejects a decode call with several queries and a bad block size', () => {
    const q = tf.zeros([1, 2, 3, 4]);
    const k = tf.zeros([1, 1, 3, 4]);
    tf.tidy(() => {
      assert.throws(() => decodeAttention(q, k, k, undefined, 1), /one query position/);
      assert.throws(() => flashAttention(0), /block size/);
      assert.throws(() => batchedAttention(q, tf.zeros([1, 1, 3, 5]), k, undefined, 1), /q \[B,H,T,D\]/);
    });
    tf.dispose([q, k]);
  });
});
