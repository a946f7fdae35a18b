// What `tfvlm forward --model DIR --inputs IN.safetensors --dump OUT.safetensors [--capture all|NAME,…]`
// does: run one forward pass on saved model inputs and write logits plus the captured
// intermediates, named as in FIXTURES.md, so any fixture-shaped reference can be diffed against it.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors.ts';
import { Capture } from './capture.ts';
import { loadModel } from './registry.ts';

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

export async function forwardDump(opts: ForwardDumpOptions): Promise<ForwardDumpResult> {
  const model = await loadModel(opts.model);
  const file = SafetensorsFile.open(opts.inputs);
  const read = (name: string) => (file.has(name) ? file.readTensor(name) : undefined);
  const inputs: Record<string, tf.Tensor | undefined> = {};
  const capture = new Capture(opts.capture ?? 'all');
  try {
    if (!file.has('input_ids')) throw new TfvlmError(`${opts.inputs}: no 'input_ids' tensor (found: ${file.keys().join(', ')})`);
    for (const k of ['input_ids', 'attention_mask', 'pixel_values', 'pixel_attention_mask']) inputs[k] = read(k);
    const t0 = performance.now();
    const { logits } = model.forward({
      input_ids: inputs.input_ids!,
      attention_mask: inputs.attention_mask,
      pixel_values: inputs.pixel_values,
      pixel_attention_mask: inputs.pixel_attention_mask,
    }, { capture });
    const ms = performance.now() - t0;
    const out = new Map<string, tf.Tensor>(capture.tensors);
    out.set('logits', logits);
    writeSafetensors(opts.dump, out, { format: 'pt', producer: 'tfvlm forward' });
    logits.dispose();
    return {
      tensors: [...out].map(([name, t]) => ({ name, shape: t.shape })),
      missing: capture.missing().filter((n) => n !== 'logits'),
      ms,
    };
  } finally {
    file.close();
    capture.dispose();
    for (const t of Object.values(inputs)) t?.dispose();
    model.dispose();
  }
}
