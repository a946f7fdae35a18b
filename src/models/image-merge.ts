// Image features replace the image-token embeddings, in order (transformers: Idefics3Model.inputs_merger,
// LlavaModel's masked_scatter). Shared by every model that merges vision features into the prompt.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';

/**
 * inputsEmbeds [B, T, D] with the rows where inputIds == imageTokenId replaced, row-major, by the rows
 * of imageFeatures [n, per, D]. A token/feature count mismatch throws with both numbers.
 */
export function mergeImageFeatures(
  inputIds: tf.Tensor, inputsEmbeds: tf.Tensor, imageFeatures: tf.Tensor, imageTokenId: number, unit = 'images',
): tf.Tensor {
  const [B, T, Dt] = inputsEmbeds.shape as [number, number, number];
  const ids = inputIds.dataSync();
  let count = 0;
  for (let i = 0; i < ids.length; i++) if (ids[i] === imageTokenId) count++;
  const rows = imageFeatures.shape[0] * (imageFeatures.shape[1] as number);
  if (count !== rows || imageFeatures.shape[2] !== Dt) {
    throw new TfvlmError(
      `input_ids hold ${count} image tokens (id ${imageTokenId}) but the images give ${rows} feature rows ` +
      `(${imageFeatures.shape[0]} ${unit} × ${imageFeatures.shape[1]} of width ${imageFeatures.shape[2]}); they must agree`,
    );
  }
  const index = new Int32Array(B * T);
  let k = 0;
  for (let i = 0; i < B * T; i++) index[i] = ids[i] === imageTokenId ? B * T + k++ : i;
  return tf.tidy(() => {
    const table = tf.concat([tf.reshape(inputsEmbeds, [B * T, Dt]), tf.reshape(imageFeatures, [rows, Dt])], 0);
    return tf.reshape(tf.gather(table, tf.tensor1d(index, 'int32')), [B, T, Dt]);
  });
}
