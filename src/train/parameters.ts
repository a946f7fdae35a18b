// Tied embeddings during training: the LM head is transpose(embed_tokens), so gradients through the
// head must reach embed_tokens, and the head is refreshed after embed_tokens changes. (Which tensors a
// model has, by checkpoint key, is `model.slots`, made when its weights are loaded: models/weights.ts.)
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import type { DecoderModel } from '../models/decoder-model.ts';

type TiedModel = DecoderModel & { config: { tie_word_embeddings: boolean } };

function embeddingTable(model: TiedModel): tf.Tensor2D {
  const { table } = model.text.weights.embed_tokens;
  if (!table) throw new TfvlmError("training needs float32 weights in tfjs tensors; load the model with weights 'float32'");
  return table;
}

/**
 * For tied embeddings: points the LM head at transpose(embed_tokens) for the duration of `fn`, so
 * gradients through the head reach embed_tokens. Returns fn's result; the head is restored after.
 */
export function withTiedHead<T>(model: TiedModel, fn: () => T): T {
  if (!model.config.tie_word_embeddings) return fn();
  const head = model.text.lmHead;
  const saved = head.weightT;
  head.weightT = tf.transpose(embeddingTable(model)) as tf.Tensor2D;
  try {
    return fn();
  } finally {
    head.weightT = saved;
  }
}

/** Copies transpose(embed_tokens) into the LM head after embed_tokens changed (tied embeddings). */
export function syncTiedHead(model: TiedModel): void {
  if (!model.config.tie_word_embeddings) return;
  const head = model.text.lmHead;
  const next = tf.keep(tf.tidy(() => tf.transpose(embeddingTable(model)) as tf.Tensor2D));
  head.weightT?.dispose();
  head.weightT = next;
}
