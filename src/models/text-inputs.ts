import { TfvlmError } from '../errors.ts';

/** Checks a text tower's batch: input_ids [B][T] (same T, ≤ maxPositions) and a matching attention_mask. */
export function checkTextBatch(inputIds: number[][], attentionMask: number[][] | undefined, maxPositions: number): { B: number; T: number } {
  const B = inputIds.length;
  const T = inputIds[0]?.length ?? 0;
  if (B === 0 || T === 0) throw new TfvlmError('input_ids: need at least one non-empty row');
  if (inputIds.some((r) => r.length !== T)) throw new TfvlmError('input_ids: rows must have the same length (pad them)');
  if (T > maxPositions) {
    throw new TfvlmError(`input_ids: ${T} tokens exceed text_config.max_position_embeddings ${maxPositions}`);
  }
  if (attentionMask && (attentionMask.length !== B || attentionMask.some((r) => r.length !== T))) {
    throw new TfvlmError(`attention_mask must be [${B}, ${T}] like input_ids`);
  }
  return { B, T };
}
