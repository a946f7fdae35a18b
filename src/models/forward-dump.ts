// What `tfvlm forward` does: run one forward pass on model inputs and write logits plus the
// captured intermediates, named as in FIXTURES.md, so any fixture-shaped reference can be diffed
// against it. The inputs come from a safetensors file or from the processor (then they are
// written to the dump too).
import { tf } from '../backend/index.ts';
import type { ModelLoadOptions } from './load-options.ts';
import { TfvlmError } from '../errors.ts';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors.ts';
import { Capture } from './capture.ts';
import { loadModel } from './registry.ts';

export const MODEL_INPUT_NAMES = ['input_ids', 'attention_mask', 'pixel_values', 'pixel_attention_mask'] as const;
export type ModelInputTensors = Partial<Record<(typeof MODEL_INPUT_NAMES)[number], tf.Tensor>>;

export interface ForwardDumpOptions {
  /** Model folder (config.json + safetensors). */
  model: string;
  /** Safetensors with input_ids [B, T] and optionally attention_mask, pixel_values, pixel_attention_mask. */
  inputs: string;
  /** Output safetensors file. */
  dump: string;
  /** 'all' (default) or a list of capture names; logits are always written. */
  capture?: 'all' | string[];
}

export interface ForwardDumpResult {
  tensors: { name: string; shape: number[] }[];
  /** Requested names no forward pass produced (e.g. vision names without pixel_values). */
  missing: string[];
  ms: number;
}

/** Parses a --capture value: 'all' or comma-separated names. */
export function parseCaptureList(value: string | undefined): 'all' | string[] {
  if (value === undefined || value === 'all') return 'all';
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new TfvlmError(`--capture: expected 'all' or comma-separated names, got '${value}'`);
  return names;
}

/** Reads the model inputs a safetensors file holds (input_ids required). The caller disposes them. */
export function readModelInputs(file: string): ModelInputTensors {
  const f = SafetensorsFile.open(file);
  try {
    if (!f.has('input_ids')) throw new TfvlmError(`${file}: no 'input_ids' tensor (found: ${f.keys().join(', ')})`);
    const inputs: ModelInputTensors = {};
    for (const k of MODEL_INPUT_NAMES) if (f.has(k)) inputs[k] = f.readTensor(k);
    return inputs;
  } finally {
    f.close();
  }
}

/**
 * One forward pass of the model in `modelDir` on `inputs`; writes logits + captured tensors (and,
 * with `includeInputs`, the inputs themselves) to `dump`.
 */
export async function forwardToDump(
  modelDir: string,
  inputs: ModelInputTensors,
  dump: string,
  opts: { capture?: 'all' | string[]; includeInputs?: boolean; load?: ModelLoadOptions } = {},
): Promise<ForwardDumpResult> {
  if (!inputs.input_ids) throw new TfvlmError('forward: input_ids are required');
  const model = await loadModel(modelDir, opts.load);
  const capture = new Capture(opts.capture ?? 'all');
  try {
    const t0 = performance.now();
    const { logits } = model.forward({
      input_ids: inputs.input_ids,
      attention_mask: inputs.attention_mask,
      pixel_values: inputs.pixel_values,
      pixel_attention_mask: inputs.pixel_attention_mask,
    }, { capture });
    const ms = performance.now() - t0;
    const out = new Map<string, tf.Tensor>();
    if (opts.includeInputs) for (const k of MODEL_INPUT_NAMES) if (inputs[k]) out.set(k, inputs[k]!);
    for (const [k, t] of capture.tensors) out.set(k, t);
    out.set('logits', logits);
    try {
      writeSafetensors(dump, out, { format: 'pt', producer: 'tfvlm forward' });
    } finally {
      logits.dispose();
    }
    return {
      tensors: [...out].map(([name, t]) => ({ name, shape: t.shape })),
      missing: capture.missing().filter((n) => n !== 'logits'),
      ms,
    };
  } finally {
    capture.dispose();
    model.dispose();
  }
}

export async function forwardDump(opts: ForwardDumpOptions): Promise<ForwardDumpResult> {
  const inputs = readModelInputs(opts.inputs);
  try {
    return await forwardToDump(opts.model, inputs, opts.dump, { capture: opts.capture });
  } finally {
    for (const t of Object.values(inputs)) t?.dispose();
  }
}
