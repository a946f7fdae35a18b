// Examples → one padded batch (right padding) with next-token targets and loss weights.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import type { AttentionTarget } from './attention-supervision.ts';
import type { TrainExample } from './examples.ts';

export interface TrainBatch {
  /** int32 [B, T] */
  input_ids: tf.Tensor2D;
  /** [B·T] row-major, 1 = real token. */
  attention_mask: Int32Array;
  /** [B, tiles, C, H, W]; all-zero padding tiles where an example has fewer. */
  pixel_values?: tf.Tensor;
  pixel_attention_mask?: tf.Tensor;
  /** [B·T]: the token each position must predict (the next one; 0 where unused). */
  targets: Int32Array;
  /**
   * [B·T]: where the next token is an assistant token, 1 ('token' weighting, as transformers'
   * mean over labelled tokens) or 1 / the length of its assistant turn ('turn': every answer counts
   * the same, however many tokens it has); 0 elsewhere.
   */
  weights: Float32Array;
  /** Sum of weights. */
  supervised: number;
  /** Real (non-padding) tokens. */
  tokens: number;
  /** Per row: the example's attention targets (when any example of the batch has some). */
  attentionTargets?: AttentionTarget[][];
  /** Number of attention targets over all rows. */
  attentionRows: number;
}

export type LossWeighting = 'token' | 'turn';

/**
 * Per position of one example: the weight of predicting the next token (see TrainBatch.weights),
 * and their sum as TrainBatch.supervised counts it.
 */
export function lossWeights(e: TrainExample, weighting: LossWeighting = 'token'): { weights: Float32Array; supervised: number } {
  const n = e.input_ids.length;
  const weights = new Float32Array(n);
  let supervised = 0;
  // Runs of assistant tokens: one per assistant turn.
  for (let t = 0; t + 1 < n;) {
    if (!e.assistant_mask[t + 1]) {
      t++;
      continue;
    }
    let end = t;
    while (end + 1 < n && e.assistant_mask[end + 1]) end++;
    weights.fill(weighting === 'turn' ? 1 / (end - t) : 1, t, end);
    supervised += weighting === 'turn' ? 1 : end - t;
    t = end;
  }
  return { weights, supervised };
}

export function collate(examples: readonly TrainExample[], padTokenId: number, weighting: LossWeighting = 'token'): TrainBatch {
  if (examples.length === 0) throw new TfvlmError('collate: empty batch');
  const B = examples.length;
  const T = Math.max(...examples.map((e) => e.input_ids.length));
  const ids = new Int32Array(B * T).fill(padTokenId);
  const attention = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  const weights = new Float32Array(B * T);
  let supervised = 0;
  let tokens = 0;
  examples.forEach((e, b) => {
    const n = e.input_ids.length;
    ids.set(e.input_ids, b * T);
    attention.fill(1, b * T, b * T + n);
    tokens += n;
    for (let t = 0; t + 1 < n; t++) targets[b * T + t] = e.input_ids[t + 1]!;
    const w = lossWeights(e, weighting);
    weights.set(w.weights, b * T);
    supervised += w.supervised;
  });
  const batch: TrainBatch = {
    input_ids: tf.tensor2d(ids, [B, T], 'int32'), attention_mask: attention, targets, weights, supervised, tokens,
    attentionRows: examples.reduce((n, e) => n + (e.attentionTargets?.length ?? 0), 0),
  };
  if (batch.attentionRows > 0) batch.attentionTargets = examples.map((e) => e.attentionTargets ?? []);
  const withPixels = examples.filter((e) => e.pixel_values);
  const firstWithPixels = withPixels[0];
  if (firstWithPixels) {
    if (withPixels.length !== B) throw new TfvlmError('collate: a batch mixes examples with and without images');
    const [, C, H, W] = firstWithPixels.pixelShape!;
    for (const e of withPixels) {
      const [, c, h, w] = e.pixelShape!;
      if (c !== C || h !== H || w !== W) throw new TfvlmError(`collate: image tiles of different sizes [${c}, ${h}, ${w}] and [${C}, ${H}, ${W}]`);
    }
    const tiles = Math.max(...withPixels.map((e) => e.pixelShape![0]));
    const perTile = C * H * W;
    const pixels = new Float32Array(B * tiles * perTile);
    const pixelMask = new Uint8Array(B * tiles * H * W);
    examples.forEach((e, b) => {
      pixels.set(e.pixel_values!, b * tiles * perTile);
      if (e.pixel_attention_mask) pixelMask.set(e.pixel_attention_mask, b * tiles * H * W);
      else pixelMask.fill(1, b * tiles * H * W, (b * tiles + e.pixelShape![0]) * H * W);
    });
    batch.pixel_values = tf.tensor(pixels, [B, tiles, C, H, W]);
    batch.pixel_attention_mask = tf.tensor(pixelMask, [B, tiles, H, W], 'bool');
  }
  return batch;
}

export function disposeBatch(b: TrainBatch): void {
  b.input_ids.dispose();
  b.pixel_values?.dispose();
  b.pixel_attention_mask?.dispose();
}
