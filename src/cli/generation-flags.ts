// The flags every generating command shares, and how timings are reported.
import { TfvlmError } from '../errors.ts';
import type { GenerateCallOptions, GenerationOutput, VlmLoadOptions } from '../engine.ts';
import { LOAD_DTYPES, resolveLoadDType, resolveResidence, type LoadDType } from '../models/load-options.ts';
import { optionalNumber, type ParsedArgs } from './command.ts';
import { progressPrinter } from './progress-printer.ts';

export const GENERATION_OPTIONS = {
  'max-new-tokens': { type: 'string' },
  greedy: { type: 'boolean' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  seed: { type: 'string' },
  stop: { type: 'string', multiple: true },
  'image-splitting': { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  weights: { type: 'string' },
  dtype: { type: 'string' },
  'group-size': { type: 'string' },
  adapter: { type: 'string' },
} as const;

export const GENERATION_HELP = `Generation:
  --max-new-tokens N     new tokens at most (default: generation_config.json, else 256)
  --greedy               argmax decoding (the default unless generation_config.json samples)
  --temperature T        sample with temperature T (0 = greedy)
  --top-k K --top-p P --min-p P --repetition-penalty R
  --seed S               seed of the sampler (same seed, same output)
  --stop TEXT            stop when TEXT appears (repeatable; TEXT is not printed)
  --image-splitting on|off   override the checkpoint's do_image_splitting (off is faster on CPU)
  --json                 print one JSON object {prompt, input_ids, generated_ids, text, stop_reason, timings} and nothing else on stdout
  -q, --quiet            no timings and no progress on stderr
  --weights stored|float32   where the weights live (default: $TFVLM_WEIGHTS, else stored = in the
                         checkpoint's precision outside the tfjs heap, run by tfvlm's kernels;
                         float32 = widened tfjs tensors, the reference path)
  --dtype auto|q8|q4     q8/q4: quantize the language model's linears and embeddings to 8 or 4 bits
                         while loading (MLX's affine format; the vision tower's linears to 8 bits);
                         auto (default): run the weights as stored, quantized or not
  --group-size 32|64|128 values per scale and bias with --dtype q8|q4 (default 64)
  --adapter DIR          a LoRA adapter (peft format, what tfvlm train --trainable lora saves) merged
                         into the weights at load; the weights are then float32 tfjs tensors
Loading more than 1 GB of weights, and a vision pass or prefill longer than 3 s, show progress on stderr.
Ctrl-C stops generation cleanly: the text so far is printed, stop_reason is "aborted" and the exit
status 130; a second Ctrl-C quits at once.`;

export function imageSplitting(args: ParsedArgs, cmd: string): boolean | undefined {
  const v = args.values['image-splitting'];
  if (v === undefined) return undefined;
  if (v === 'on') return true;
  if (v === 'off') return false;
  throw new TfvlmError(`tfvlm ${cmd}: --image-splitting must be on or off, got '${String(v)}'`);
}

export function generationOptions(args: ParsedArgs, cmd: string): GenerateCallOptions {
  const temperature = optionalNumber(args, 'temperature', cmd);
  const sampled = !args.values.greedy && (temperature !== undefined && temperature > 0 ? true : undefined);
  const stops = args.values.stop;
  const o: GenerateCallOptions = {
    maxNewTokens: optionalNumber(args, 'max-new-tokens', cmd),
    temperature,
    topK: optionalNumber(args, 'top-k', cmd),
    topP: optionalNumber(args, 'top-p', cmd),
    minP: optionalNumber(args, 'min-p', cmd),
    repetitionPenalty: optionalNumber(args, 'repetition-penalty', cmd),
    seed: optionalNumber(args, 'seed', cmd),
    stopStrings: Array.isArray(stops) ? stops.map(String) : undefined,
    imageSplitting: imageSplitting(args, cmd),
    onProgress: args.values.quiet ? undefined : progressPrinter(),
  };
  if (args.values.greedy) o.doSample = false;
  else if (sampled) o.doSample = true;
  return o;
}

/** How the generating commands load the model: --weights, --dtype, --group-size, --adapter, and load progress unless --quiet. */
export function loadOptions(args: ParsedArgs, cmd: string): VlmLoadOptions {
  const given = args.values.weights;
  const adapter = args.values.adapter;
  if (adapter !== undefined && (typeof adapter !== 'string' || adapter.length === 0)) throw new TfvlmError(`tfvlm ${cmd}: --adapter needs a folder`);
  let weights;
  try {
    // An adapter merges into float32 weights; only an explicit --weights overrides that (and is refused if stored).
    weights = adapter !== undefined && given === undefined ? 'float32' as const : resolveResidence(given);
  } catch {
    throw new TfvlmError(`tfvlm ${cmd}: --weights must be stored or float32, got '${String(given ?? process.env.TFVLM_WEIGHTS)}'`);
  }
  return {
    weights, ...dtypeOptions(args, cmd), ...(adapter !== undefined ? { adapter: adapter as string } : {}),
    onLoadProgress: args.values.quiet ? undefined : progressPrinter(),
  };
}

/** --dtype and --group-size, checked. */
export function dtypeOptions(args: ParsedArgs, cmd: string): { dtype?: LoadDType; groupSize?: number } {
  const dtype = args.values.dtype as string | undefined;
  if (dtype !== undefined && !(LOAD_DTYPES as readonly string[]).includes(dtype)) {
    throw new TfvlmError(`tfvlm ${cmd}: --dtype must be auto, q8 or q4, got '${dtype}'`);
  }
  const groupSize = optionalNumber(args, 'group-size', cmd);
  try {
    resolveLoadDType({ dtype: dtype as LoadDType | undefined, groupSize });
  } catch (e) {
    throw new TfvlmError(`tfvlm ${cmd}: ${e instanceof Error ? e.message.replace('groupSize', '--group-size').replace("dtype 'q8' or 'q4'", '--dtype q8 or q4') : String(e)}`);
  }
  return { dtype: dtype as LoadDType | undefined, groupSize };
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const rate = (n: number, ms: number) => (ms > 0 ? `${((n * 1000) / ms).toFixed(1)} tok/s` : 'n/a');

export function timingsLine(out: GenerationOutput, loadMs: number): string {
  const t = out.timings;
  return [
    `load ${s(loadMs)}`,
    `vision+embed ${s(t.embedMs)}`,
    `prefill ${t.prefillTokens} tok in ${s(t.prefillMs)} (${rate(t.prefillTokens, t.prefillMs)})`,
    `decode ${t.decodeTokens} tok in ${s(t.decodeMs)} (${rate(t.decodeTokens, t.decodeMs)})`,
    ...(out.stopReason === 'aborted' ? ['aborted'] : []),
  ].join(' · ');
}

export function jsonResult(out: GenerationOutput, loadMs: number) {
  return {
    prompt: out.prompt,
    input_ids: out.input_ids,
    generated_ids: out.generatedIds,
    text: out.text,
    stop_reason: out.stopReason,
    timings: { load_ms: loadMs, ...out.timings },
  };
}
