// Idefics3 vision transformer (transformers 4.47 modeling_idefics3.py: Idefics3VisionEmbeddings,
// Idefics3VisionTransformer, and the image part of Idefics3Model.forward): SigLIP patch embedding,
// learned positions looked up through NaViT-style bucketised position ids (so a partial image's
// patches spread over the full position grid), pixel_attention_mask → patch mask → key padding mask.
import { tf } from '../../backend/index.ts';
import { TfvlmError } from '../../errors.ts';
import { paddingMask } from '../../layers/masks.ts';
import type { Capture } from '../capture.ts';
import type { SiglipVisionConfig } from '../siglip/config.ts';
import { patchEmbed, siglipEncode, type SiglipVisionWeights } from '../siglip/encoder.ts';

const f32 = Math.fround;

/** float32 torch.arange(start, end, step): length ceil((end − start) / step), values start + i·step (f32). */
function arangeF32(start: number, end: number, step: number): Float32Array {
  const n = Math.max(0, Math.ceil((end - start) / step));
  return Float32Array.from({ length: n }, (_, i) => f32(start + i * step));
}

/** torch.bucketize(x, boundaries, right=True): the number of boundaries ≤ x. */
function bucketizeRight(x: number, boundaries: Float32Array): number {
  let n = 0;
  while (n < boundaries.length && boundaries[n]! <= x) n++;
  return n;
}

/**
 * Position ids [nh·nw] for one image whose patch mask is `patchMask` ([nh, nw] row-major, 1 = real):
 * real patches get bucket(h)·side + bucket(w) in row-major order, padded patches 0
 * (Idefics3VisionEmbeddings.forward).
 */
export function visionPositionIds(patchMask: ArrayLike<number>, nh: number, nw: number, side: number, image = 0): Int32Array {
  const boundaries = arangeF32(1 / side, 1.0, 1 / side);
  let rowsReal = 0; // p_attn_mask[:, 0].sum()
  for (let y = 0; y < nh; y++) rowsReal += patchMask[y * nw] ? 1 : 0;
  let colsReal = 0; // p_attn_mask[0].sum()
  for (let x = 0; x < nw; x++) colsReal += patchMask[x] ? 1 : 0;
  const out = new Int32Array(nh * nw);
  if (rowsReal === 0 || colsReal === 0) {
    throw new TfvlmError(`pixel_attention_mask of image ${image} masks its first patch row or column entirely; ` +
      `transformers cannot compute position ids for it`);
  }
  // 1 / nb_patches is a float32 tensor op in transformers; the step is that float32 value.
  const coordsH = arangeF32(0, 1 - 1e-6, f32(1 / rowsReal));
  const coordsW = arangeF32(0, 1 - 1e-6, f32(1 / colsReal));
  const bucketH = Array.from(coordsH, (v) => bucketizeRight(v, boundaries));
  const bucketW = Array.from(coordsW, (v) => bucketizeRight(v, boundaries));
  const ids: number[] = [];
  for (const bh of bucketH) for (const bw of bucketW) ids.push(bh * side + bw);
  let k = 0;
  for (let i = 0; i < nh * nw; i++) {
    if (!patchMask[i]) continue;
    if (k >= ids.length) break;
    out[i] = ids[k++]!;
  }
  let real = 0;
  for (let i = 0; i < nh * nw; i++) real += patchMask[i] ? 1 : 0;
  if (real !== ids.length) {
    throw new TfvlmError(`pixel_attention_mask of image ${image}: ${real} real patches do not form the ` +
      `${rowsReal}×${colsReal} top-left rectangle transformers assumes (${ids.length} patches)`);
  }
  return out;
}

/** Patch mask [N, nh, nw] (1 if any pixel of the patch is real) from a pixel mask [N, H, W]. */
export function patchMaskFromPixels(pixelMask: ArrayLike<number>, N: number, H: number, W: number, p: number): Uint8Array {
  const nh = Math.floor(H / p);
  const nw = Math.floor(W / p);
  const out = new Uint8Array(N * nh * nw);
  for (let n = 0; n < N; n++) {
    for (let y = 0; y < nh * p; y++) {
      const row = (n * H + y) * W;
      const outRow = (n * nh + Math.floor(y / p)) * nw;
      for (let x = 0; x < nw * p; x++) {
        if (pixelMask[row + x]) out[outRow + Math.floor(x / p)] = 1;
      }
    }
  }
  return out;
}

export class Idefics3VisionTransformer {
  constructor(readonly config: SiglipVisionConfig, readonly weights: SiglipVisionWeights) {}

  /**
   * pixel_values [N, C, H, W] (real tiles only), patchMask [N, nh, nw] (1 = real; omitted = all real)
   * → last_hidden_state [N, nh·nw, hidden]. Captures vision.embeddings, vision.layers.{i}, vision.post_layernorm.
   */
  forward(pixelValues: tf.Tensor, patchMask?: Uint8Array, capture?: Capture): tf.Tensor {
    const c = this.config;
    const [N, , H, W] = pixelValues.shape as [number, number, number, number];
    const nh = Math.floor(H / c.patch_size);
    const nw = Math.floor(W / c.patch_size);
    const S = nh * nw;
    const mask = patchMask ?? new Uint8Array(N * S).fill(1);
    if (mask.length !== N * S) throw new TfvlmError(`patch mask must be [${N}, ${nh}, ${nw}], got ${mask.length} values`);
    const positionIds = new Int32Array(N * S);
    for (let n = 0; n < N; n++) {
      positionIds.set(visionPositionIds(mask.subarray(n * S, (n + 1) * S), nh, nw, c.num_patches_per_side, n), n * S);
    }
    const embeddings = tf.tidy(() => {
      const patches = patchEmbed(this.weights, c, pixelValues);
      const ids = tf.tensor2d(positionIds, [N, S], 'int32');
      return tf.add(patches, tf.gather(this.weights.position_embedding, ids));
    });
    capture?.record('vision.embeddings', embeddings);
    const attnMask = paddingMask(mask, N, S);
    try {
      return siglipEncode(this.weights, c, embeddings, attnMask, capture, 'vision');
    } finally {
      embeddings.dispose();
      attnMask?.dispose();
    }
  }
}
