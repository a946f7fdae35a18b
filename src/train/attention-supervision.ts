// Supervised attention: an auxiliary loss that teaches chosen heads of one text layer where to
// look. For each target row, the head's attention from position `query` should fall on the
// positions `keys` (e.g. from an answer's first position onto the image tokens of the object the
// question names); the loss is −log of the probability mass it puts there, averaged over rows and
// heads, and is added to the language-model loss times `weight`.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';

/** One supervised attention row of an example: position `query` should attend to `keys`. */
export interface AttentionTarget {
  query: number;
  keys: number[];
}

export interface AttentionSupervision {
  /** Text decoder layer whose self-attention is supervised (0-based). */
  layer: number;
  /** Query heads of that layer that are supervised. */
  heads: number[];
  /** Factor of the auxiliary loss in the training objective. */
  weight: number;
}

/** Added to the mass before the log, so a row that puts no weight on its keys has a finite loss. */
const MASS_FLOOR = 1e-6;

/** The capture name of the supervised layer's attention probabilities. */
export function supervisedAttentionName(s: AttentionSupervision): string {
  return `text.layers.${s.layer}.attn_weights`;
}

/** Throws unless `s` names a layer and heads the text model has and a positive finite weight. */
export function checkAttentionSupervision(s: AttentionSupervision, numHiddenLayers: number, numAttentionHeads: number): void {
  if (!Number.isInteger(s.layer) || s.layer < 0 || s.layer >= numHiddenLayers) {
    throw new TfvlmError(`attention supervision: layer ${s.layer} is not one of the text model's ${numHiddenLayers} layers (text_config.num_hidden_layers)`);
  }
  if (s.heads.length === 0) throw new TfvlmError('attention supervision: no heads given');
  for (const h of s.heads) {
    if (!Number.isInteger(h) || h < 0 || h >= numAttentionHeads) {
      throw new TfvlmError(`attention supervision: head ${h} is not one of the ${numAttentionHeads} heads (text_config.num_attention_heads)`);
    }
  }
  if (!(Number.isFinite(s.weight) && s.weight > 0)) throw new TfvlmError(`attention supervision: weight must be > 0, got ${s.weight}`);
}

/** Throws unless every target of an example of `length` tokens has positions inside it and keys before its query. */
export function checkAttentionTargets(targets: readonly AttentionTarget[], length: number, where: string): void {
  for (const { query, keys } of targets) {
    const bad = [query, ...keys].find((p) => !Number.isInteger(p) || p < 0 || p >= length);
    if (bad !== undefined) throw new TfvlmError(`${where}: attention target position ${bad} is outside the example's ${length} tokens`);
    if (keys.length === 0) throw new TfvlmError(`${where}: attention target of query ${query} has no keys`);
    const future = keys.find((k) => k > query);
    if (future !== undefined) throw new TfvlmError(`${where}: attention target key ${future} comes after its query ${query} (attention is causal)`);
  }
}

/**
 * weights [B, H, T, S] (one layer's attention probabilities), targets per batch row → the mean over
 * rows and `heads` of −log(mass on the keys); undefined when no row has a target.
 */
export function attentionSupervisionLoss(
  weights: tf.Tensor, targets: readonly (readonly AttentionTarget[])[], heads: readonly number[],
): tf.Scalar | undefined {
  if (weights.rank !== 4) throw new TfvlmError(`attention supervision: weights must be [B, H, T, S], got [${weights.shape}]`);
  const [B, H, T, S] = weights.shape as [number, number, number, number];
  if (targets.length !== B) throw new TfvlmError(`attention supervision: ${targets.length} target lists for a batch of ${B}`);
  const keyMask = new Float32Array(B * T * S);
  const rowMask = new Float32Array(B * T);
  let rows = 0;
  targets.forEach((list, b) => {
    for (const { query, keys } of list) {
      rowMask[b * T + query] = 1;
      rows++;
      for (const k of keys) keyMask[(b * T + query) * S + k] = 1;
    }
  });
  if (rows === 0) return undefined;
  for (const h of heads) if (h >= H) throw new TfvlmError(`attention supervision: head ${h} of a layer with ${H} heads`);
  return tf.tidy(() => {
    const picked = tf.gather(weights, tf.tensor1d(heads as number[], 'int32'), 1); // [B, h, T, S]
    const mass = tf.sum(tf.mul(picked, tf.reshape(tf.tensor3d(keyMask, [B, T, S]), [B, 1, T, S])), -1); // [B, h, T]
    const nll = tf.neg(tf.log(tf.add(mass, MASS_FLOOR)));
    const perRow = tf.mul(nll, tf.reshape(tf.tensor2d(rowMask, [B, T]), [B, 1, T]));
    return tf.div(tf.sum(perRow), rows * heads.length) as tf.Scalar;
  });
}
