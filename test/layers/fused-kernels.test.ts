// The fused wasm kernels against the op-by-op layers they replace.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/backend/index.ts';
import { fusedKernelsActive, withoutFusedKernels } from '../../src/backend/fused-kernels.ts';
import { attention, type AttentionWeights } from '../../src/layers/attention.ts';
import { ConcatKVCache } from '../../src/layers/kv-cache.ts';
import { PreallocatedKVCache } from '../../src/layers/preallocated-kv-cache.ts';
import { linearFromCheckpoint } from '../../src/layers/linear.ts';
import { gatedMlp } from '../../src/layers/mlp.ts';
import { silu } from '../../src/layers/activations.ts';
import { addRmsNorm, rmsNorm } from '../../src/layers/rms-norm.ts';
import { layerNorm } from '../../src/layers/layer-norm.ts';
import { inverseFrequencies, rotaryTables } from '../../src/layers/rotary.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';
import { randomTensor, take } from './util.ts';
import { startWasmWithFastPaths } from '../helpers/wasm-backend.ts';

/** fn's result computed op by op. */
function unfused(fn: () => tf.Tensor): Float32Array {
  return withoutFusedKernels(() => {
    assert.equal(fusedKernelsActive(), false);
    return take(fn());
  });
}

describe('fused kernels (wasm)', () => {
  before(async () => {
    await startWasmWithFastPaths();
    assert.ok(fusedKernelsActive(), 'the fused kernels are off (TFVLM_FUSED=0?)');
  });

  it('RMSNorm, LayerNorm and SiLU·up equal the op-by-op layers', () => {
    const x = randomTensor([2, 3, 40], 1, 3);
    const norm = { weight: randomTensor([40], 2) as tf.Tensor1D, eps: 1e-5 };
    assertClose(take(rmsNorm(norm, x)), unfused(() => rmsNorm(norm, x)), TOLERANCE.fusedKernel, 'rmsNorm');
    const delta = randomTensor([2, 3, 40], 7);
    const fused = addRmsNorm(norm, x, delta);
    const ref = withoutFusedKernels(() => addRmsNorm(norm, x, delta));
    assertClose(take(fused.sum), take(ref.sum), TOLERANCE.exact, 'addRmsNorm sum');
    assertClose(take(fused.normed), take(ref.normed), TOLERANCE.fusedKernel, 'addRmsNorm normed');
    delta.dispose();
    const ln = { weight: norm.weight, bias: randomTensor([40], 6) as tf.Tensor1D, eps: 1e-6 };
    assertClose(take(layerNorm(ln, x)), unfused(() => layerNorm(ln, x)), TOLERANCE.fusedKernel, 'layerNorm');
    ln.bias.dispose();
    const mlp = {
      gate: linearFromCheckpoint(randomTensor([24, 40], 3, 0.3)),
      up: linearFromCheckpoint(randomTensor([24, 40], 4, 0.3)),
      down: linearFromCheckpoint(randomTensor([40, 24], 5, 0.3)),
      act: silu,
    };
    assertClose(take(gatedMlp(mlp, x)), unfused(() => gatedMlp(mlp, x)), TOLERANCE.float32, 'gatedMlp');
    tf.dispose([x, norm.weight, mlp.gate.weightT, mlp.up.weightT, mlp.down.weightT]);
  });

  it('rotary attention: prefill then one-token steps match the unfused path, without leaking tensors', () => {
    const [H, Hkv, D, hidden] = [6, 2, 16, 32];
    const w: AttentionWeights = {
      q: linearFromCheckpoint(randomTensor([H * D, hidden], 10, 0.3)),
      k: linearFromCheckpoint(randomTensor([Hkv * D, hidden], 11, 0.3)),
      v: linearFromCheckpoint(randomTensor([Hkv * D, hidden], 12, 0.3)),
      o: linearFromCheckpoint(randomTensor([hidden, H * D], 13, 0.3)),
    };
    const invFreq = inverseFrequencies({ dim: D, rope_theta: 10000 });
    const fast = new PreallocatedKVCache({ chunk: 8 });
    const ref = new ConcatKVCache();
    const step = (x: tf.Tensor, start: number, cache: PreallocatedKVCache | ConcatKVCache) => {
      const T = x.shape[1] as number;
      const rotary = rotaryTables(invFreq, Int32Array.from({ length: T }, (_, i) => start + i), 1, T);
      const mask = T > 1
        ? tf.tensor4d(Float32Array.from({ length: T * T }, (_, i) => (i % T > Math.floor(i / T) ? -3.4e38 : 0)), [1, 1, T, T])
        : undefined;
      try {
        return attention(w, x, { numHeads: H, numKeyValueHeads: Hkv, headDim: D, rotary, mask, cache });
      } finally {
        tf.dispose([rotary.cos, rotary.sin, ...(mask ? [mask] : [])]);
      }
    };
    const prompt = randomTensor([1, 5, hidden], 20);
    assertClose(take(step(prompt, 0, fast)), unfused(() => step(prompt, 0, ref)), TOLERANCE.float32, 'prefill');
    const before = tf.memory().numTensors;
    for (let s = 0; s < 12; s++) {
      const x = randomTensor([1, 1, hidden], 30 + s);
      assertClose(take(step(x, 5 + s, fast)), unfused(() => step(x, 5 + s, ref)), TOLERANCE.float32, `decode step ${s}`);
      x.dispose();
      if (s === 1) assert.equal(tf.memory().numTensors, before, 'tensors after a decode step');
    }
    tf.dispose([prompt, w.q.weightT, w.k.weightT, w.v.weightT, w.o.weightT]);
    fast.dispose();
    ref.dispose();
  });
});
