import { TfvlmError } from '../errors.ts';
import { jsonLine } from './json-output.ts';
import { resolveModel } from '../io/hub/index.ts';
import { DEFAULT_GROUP_SIZE } from '../models/load-options.ts';
import { quantizeCheckpoint } from '../models/quantize-checkpoint.ts';
import { optionalNumber, requireString, type Command } from './command.ts';
import { progressPrinter } from './progress-printer.ts';

export const quantizeCommand: Command = {
  name: 'quantize',
  summary: 'write a 4- or 8-bit copy of a model folder (MLX affine format, loads here and in mlx-vlm)',
  usage: `Usage: tfvlm quantize MODEL --bits 4|8 [--group-size 64] --out DIR [--json] [-q]

MODEL is a model folder or hub id. Writes DIR: the weights with MLX's affine group quantization as
mlx-vlm's convert writes them (MLX key names, uint32 codes + scales + biases in the weights' dtype,
files marked {"format": "mlx"}, config.json with a "quantization" block), the tokenizer, processor
and generation files copied, and a model card listing which layers were quantized. The language
model's linears and embeddings and the projector get --bits (as mlx-vlm quantizes them), the vision
tower's linears 8 bits (per-layer entries in config.json); the patch convolution and norms keep
their dtype, as does any matrix whose rows are not a whole number of groups. The folder then loads
without re-quantizing (--model DIR); --dtype q8|q4 on other commands quantizes the same way while
loading instead.

  --bits 4|8             bits per weight
  --group-size 32|64|128 values per scale and bias (default ${DEFAULT_GROUP_SIZE})
  --out DIR              a new (or empty) folder
  --json                 print {out, bits, group_size, quantized, kept, files, total_bytes} on stdout
  -q, --quiet            no progress on stderr`,
  options: {
    bits: { type: 'string' }, 'group-size': { type: 'string' }, out: { type: 'string' },
    json: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' },
  },
  allowPositionals: true,
  async run(args) {
    const [model, ...extra] = args.positionals;
    if (model === undefined || extra.length > 0) throw new TfvlmError(`tfvlm quantize: expected one MODEL\n\n${quantizeCommand.usage}`);
    const bits = optionalNumber(args, 'bits', 'quantize');
    if (bits !== 4 && bits !== 8) throw new TfvlmError(`tfvlm quantize: --bits must be 4 or 8, got ${bits === undefined ? 'nothing' : bits}`);
    const groupSize = optionalNumber(args, 'group-size', 'quantize') ?? DEFAULT_GROUP_SIZE;
    const out = requireString(args, 'out', 'quantize');
    const dir = await resolveModel(model);
    const t0 = performance.now();
    const result = quantizeCheckpoint(dir, out, { bits, groupSize, onProgress: args.values.quiet ? undefined : progressPrinter() });
    const seconds = (performance.now() - t0) / 1000;
    if (args.values.json) {
      process.stdout.write(jsonLine({
        out, bits, group_size: groupSize, quantized: result.quantized, kept: result.kept, files: result.files,
        total_bytes: result.totalBytes, seconds,
      }));
    } else {
      process.stderr.write(`quantized ${result.quantized.length} layers to ${bits} bits (groups of ${groupSize}), kept ${result.kept.length} tensors; `
        + `${(result.totalBytes / 1e6).toFixed(1)} MB in ${result.files.length} file(s), ${seconds.toFixed(1)} s\n`);
      process.stdout.write(`${out}\n`);
    }
    return 0;
  },
};
