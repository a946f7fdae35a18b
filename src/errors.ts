/** The one error class tfvlm throws for bad input: its message names the file/field/shape at fault. */
export class TfvlmError extends Error {
  override name = 'TfvlmError';
}
