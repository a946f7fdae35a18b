// The tiny fixtures loaded the ways whose decode runs on packed weights (the one-token step and
// batched rows): stored 16-bit and quantized at load, for both decoder families.
import type { ModelLoadOptions } from '../../src/models/load-options.ts';

export const PACKED_DECODER_CASES: readonly (readonly [fixture: string, load: ModelLoadOptions])[] = [
  ['tiny-smolvlm', {}], ['tiny-smolvlm', { dtype: 'q8', groupSize: 32 }], ['tiny-smolvlm', { dtype: 'q4', groupSize: 32 }],
  ['tiny-llava', {}], ['tiny-llava', { dtype: 'q4', groupSize: 32 }],
];
