// LoRA adapters in peft's format (peft tuners/lora/layer.py, save_pretrained): adapter_config.json
// (peft_type LORA, r, lora_alpha, target_modules) + adapter_model.safetensors with
// `base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r]; the adapted
// weight is W + (lora_alpha / r)·B·A. Read here for both training (train/lora.ts) and for merging
// into a float32 model at load (mergeLoraAdapter, what Vlm.load's `adapter` does).
import { host } from '../io/host.ts';
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { SafetensorsFile } from '../io/safetensors.ts';
import { weightTOf, type Linear } from '../layers/linear.ts';
import type { ParamSlot } from './weights.ts';

export const ADAPTER_WEIGHTS_NAME = 'adapter_model.safetensors';
export const ADAPTER_CONFIG_NAME = 'adapter_config.json';

export interface LoraSettings {
  r: number;
  alpha: number;
  /** Regex (full match) over module names, as peft's string target_modules. */
  targetModules: string;
}

export function peftKey(module: string, which: 'lora_A' | 'lora_B'): string {
  return `base_model.model.${module}.${which}.weight`;
}

/** Whether dir holds a LoRA adapter (its adapter_config.json). */
export function isLoraAdapterFolder(dir: string): boolean {
  return host().exists(host().join(dir, ADAPTER_CONFIG_NAME));
}

/** adapter_config.json's r, lora_alpha and target_modules (a list becomes peft's suffix match). */
export function readLoraSettings(dir: string): LoraSettings {
  const configFile = host().join(dir, ADAPTER_CONFIG_NAME);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(host().readText(configFile));
  } catch (e) {
    throw new TfvlmError(`${configFile}: cannot read adapter config (${(e as Error).message})`);
  }
  if (raw.peft_type !== 'LORA') throw new TfvlmError(`${configFile}: peft_type ${JSON.stringify(raw.peft_type)} is not LORA`);
  const r = Number(raw.r);
  const alpha = Number(raw.lora_alpha);
  if (!Number.isInteger(r) || r <= 0) throw new TfvlmError(`${configFile}: r must be a positive integer, got ${JSON.stringify(raw.r)}`);
  if (!Number.isFinite(alpha)) throw new TfvlmError(`${configFile}: lora_alpha must be a number, got ${JSON.stringify(raw.lora_alpha)}`);
  const targets = raw.target_modules;
  const targetModules = typeof targets === 'string' ? targets
    : Array.isArray(targets) ? `(.*\\.)?(${targets.map((t) => String(t).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})` : '';
  if (!targetModules) throw new TfvlmError(`${configFile}: target_modules must be a regex string or a list of module names`);
  return { r, alpha, targetModules };
}

/** The model's Linear modules (float32 weightT) whose names fully match the target regex. */
export function loraTargets(slots: readonly ParamSlot[], targetModules: string): { name: string; linear: Linear }[] {
  const re = new RegExp(`^(?:${targetModules})$`);
  const out = slots
    .filter((s) => s.linear && s.key.endsWith('.weight') && s.layout === 'transposed')
    .map((s) => ({ name: s.key.slice(0, -'.weight'.length), linear: s.linear! }))
    .filter((m) => re.test(m.name));
  if (out.length === 0) throw new TfvlmError(`LoRA: target_modules ${JSON.stringify(targetModules)} matches no Linear of the model`);
  return out;
}

/** lora_A [r, in] and lora_B [out, r] of one module from an open adapter file, shapes checked. */
export function readLoraPair(file: SafetensorsFile, dir: string, name: string, r: number, linear: Linear): { A: tf.Tensor; B: tf.Tensor } {
  const read = (which: 'lora_A' | 'lora_B', shape: number[]) => {
    const key = peftKey(name, which);
    if (!file.has(key)) throw new TfvlmError(`${dir}/${ADAPTER_WEIGHTS_NAME}: missing ${key}`);
    const t = file.readTensor(key);
    if (t.shape.join(',') !== shape.join(',')) {
      t.dispose();
      throw new TfvlmError(`${dir}/${ADAPTER_WEIGHTS_NAME}: ${key} is [${t.shape}], expected [${shape}]`);
    }
    return t;
  };
  const A = read('lora_A', [r, linear.inFeatures]);
  try {
    return { A, B: read('lora_B', [linear.outFeatures, r]) };
  } catch (e) {
    A.dispose();
    throw e;
  }
}

/** Wᵀ + s·Aᵀ·Bᵀ = (W + s·B·A)ᵀ, [in, out] (peft merge). */
export function adaptedWeightT(weightT: tf.Tensor, A: tf.Tensor, B: tf.Tensor, scaling: number): tf.Tensor2D {
  return tf.tidy(() => tf.add(weightT, tf.mul(tf.matMul(A, B, true, true), scaling)) as tf.Tensor2D);
}

/**
 * Folds the adapter in `dir` into a float32 model's Linears for good (peft merge_and_unload);
 * returns the names of the merged modules. Everything is checked before the first weight changes.
 */
export function mergeLoraAdapter(slots: readonly ParamSlot[], dir: string): string[] {
  const settings = readLoraSettings(dir);
  const targets = loraTargets(slots, settings.targetModules);
  for (const t of targets) weightTOf(t.linear, 'merging a LoRA adapter');
  const file = SafetensorsFile.open(host().join(dir, ADAPTER_WEIGHTS_NAME));
  const pairs: { A: tf.Tensor; B: tf.Tensor }[] = [];
  try {
    for (const t of targets) pairs.push(readLoraPair(file, dir, t.name, settings.r, t.linear));
  } catch (e) {
    tf.dispose(pairs.flatMap((p) => [p.A, p.B]));
    throw e;
  } finally {
    file.close();
  }
  targets.forEach((t, i) => {
    const base = t.linear.weightT!;
    const { A, B } = pairs[i]!; // one pair per target
    t.linear.weightT = tf.keep(adaptedWeightT(base, A, B, settings.alpha / settings.r));
    base.dispose();
    A.dispose();
    B.dispose();
  });
  return targets.map((t) => t.name);
}
