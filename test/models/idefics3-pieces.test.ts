// Idefics3-specific pieces on hand-checked cases: pixel shuffle order, bucketised vision position
// ids for partial images, pixel → patch masks, and the image-token merge count check.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initBackend } from '../../src/backend/index.ts';
import { TfvlmError } from '../../src/errors.ts';
import { Capture, loadModel, patchMaskFromPixels, pixelShuffle, visionPositionIds, type Idefics3Model } from '../../src/models/index.ts';
import { fixture } from '../helpers/paths.ts';
import { assertClose, TOLERANCE } from '../helpers/compare.ts';

/** transformers pixel_shuffle written element by element: out[n, (i·(side/s) + j), (a·s + b)·D + d] = x[n, (i·s + a)·side + j·s + b, d]. */
function naivePixelShuffle(x: Float32Array, N: number, side: number, D: number, s: number): Float32Array {
  const out = new Float32Array(x.length);
  const q = side / s;
  for (let n = 0; n < N; n++) for (let i = 0; i < q; i++) for (let j = 0; j < q; j++)
    for (let a = 0; a < s; a++) for (let b = 0; b < s; b++) for (let d = 0; d < D; d++) {
      const src = (n * side * side + (i * s + a) * side + (j * s + b)) * D + d;
      const dst = (n * q * q + i * q + j) * D * s * s + (a * s + b) * D + d;
      out[dst] = x[src]!;
    }
  return out;
}

describe('Idefics3 pieces', () => {
  before(async () => { await initBackend(); });

  for (const [side, s, D] of [[4, 2, 3], [6, 3, 2], [8, 4, 1]] as const) {
    it(`pixel shuffle side ${side}, scale ${s}: a 2×2 (s×s) block becomes one row, block order row-major`, () => {
      const N = 2;
      const x = Float32Array.from({ length: N * side * side * D }, (_, i) => i);
      const y = pixelShuffle(tf.tensor3d(x, [N, side * side, D]), s);
      assert.deepEqual(y.shape, [N, (side * side) / (s * s), D * s * s]);
      assert.deepEqual(Array.from(y.dataSync()), Array.from(naivePixelShuffle(x, N, side, D, s)));
      y.dispose();
    });
  }

  it('pixel shuffle rejects a non-square sequence', () => {
    assert.throws(() => pixelShuffle(tf.zeros([1, 12, 2]), 2), TfvlmError);
  });

  it('vision position ids: full tile is 0..n²−1; partial tiles spread over the grid (bucketize)', () => {
    const full = visionPositionIds(new Uint8Array(16).fill(1), 4, 4, 4);
    assert.deepEqual(Array.from(full), Array.from({ length: 16 }, (_, i) => i));
    // 2 of 4 rows, 3 of 4 columns real: fractional coords h [0, .5] → buckets [0, 2];
    // w [0, 1/3, 2/3] → buckets [0, 1, 2] (boundaries .25, .5, .75, right=True).
    const mask = new Uint8Array(16);
    for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) mask[y * 4 + x] = 1;
    const ids = visionPositionIds(mask, 4, 4, 4);
    assert.deepEqual(Array.from(ids), [0, 1, 2, 0, 8, 9, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // An image larger than the position grid still maps into it.
    const big = visionPositionIds(new Uint8Array(36).fill(1), 6, 6, 4);
    assert.ok(Array.from(big).every((v) => v >= 0 && v < 16));
    assert.throws(() => visionPositionIds(new Uint8Array(16), 4, 4, 4), TfvlmError);
  });

  it('patch mask: a patch is real if any of its pixels is', () => {
    // one 4×4 image, patch 2: only pixel (1, 2) real → patch (0, 1); pixel (3, 0) real → patch (1, 0)
    const px = new Uint8Array(16);
    px[1 * 4 + 2] = 1;
    px[3 * 4 + 0] = 1;
    assert.deepEqual(Array.from(patchMaskFromPixels(px, 1, 4, 4, 2)), [0, 1, 1, 0]);
  });

  describe('with the tiny-smolvlm model', () => {
    let model: Idefics3Model;
    before(async () => { model = (await loadModel(fixture('tiny-smolvlm'))) as Idefics3Model; });
    after(() => model?.dispose());

    it('merge refuses a token / feature count mismatch, naming both counts', () => {
      const ids = tf.tensor2d([[1, 510, 510, 2]], [1, 4], 'int32');
      const pixels = tf.ones([1, 1, 3, 64, 64]);
      const before = tf.memory().numTensors;
      assert.throws(() => model.forward({ input_ids: ids, pixel_values: pixels }), (e: Error) =>
        e instanceof TfvlmError && /2 image tokens/.test(e.message) && /16 feature rows/.test(e.message));
      assert.equal(tf.memory().numTensors, before, 'a refused merge frees what it made');
      ids.dispose();
      pixels.dispose();
    });

    it('a partial image (pixel_attention_mask): real patches ignore the padded pixels', () => {
      const image_seq_len = model.config.image_seq_len;
      const ids = tf.tensor2d([[1, ...Array(image_seq_len).fill(510), 2]], [1, image_seq_len + 2], 'int32');
      const pixels = tf.randomUniform([1, 1, 3, 64, 64], -1, 1, 'float32', 3);
      const mask = tf.tidy(() => tf.concat([tf.ones([1, 1, 40, 64]), tf.zeros([1, 1, 24, 64])], 2)); // pixel rows 0..39 real
      const pixels2 = tf.tidy(() => tf.where(tf.cast(tf.tile(tf.expandDims(mask, 2), [1, 1, 3, 1, 1]), 'bool'), pixels, tf.onesLike(pixels)));
      const run = (px: tf.Tensor) => {
        const c2 = new Capture(['vision.post_layernorm']);
        model.forward({ input_ids: ids, pixel_values: px, pixel_attention_mask: mask }, { capture: c2 }).logits.dispose();
        const v = Float32Array.from(c2.get('vision.post_layernorm')!.dataSync());
        c2.dispose();
        return v;
      };
      const a = run(pixels);
      const b = run(pixels2);
      const realPatches = 5 * 8; // patch rows 0..4 of 8 hold real pixels (40 / 8)
      const D = model.config.vision_config.hidden_size;
      assertClose(a.subarray(0, realPatches * D), b.subarray(0, realPatches * D), TOLERANCE.float32, 'real patches');
      assert.ok(a.subarray(realPatches * D).some((v, i) => v !== b[realPatches * D + i]), 'padded patches do differ');
      [ids, pixels, mask, pixels2].forEach((t) => t.dispose());
    });
  });
});
