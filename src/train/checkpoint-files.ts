// Writing model folders in Hugging Face layout: the base model's non-weight files (config,
// tokenizer, processor, generation config, chat template) copied, then model.safetensors with HF keys.
import fs from 'node:fs';
import path from 'node:path';
import { tf } from '../backend/index.ts';
import { copyFileAtomic } from '../io/atomic-write.ts';
import { SAFE_WEIGHTS_NAME } from '../io/checkpoint.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { checkpointTensors, type ParamSlot } from '../models/weights.ts';

/** Files of a model folder that are not weights or training state. */
const SKIPPED = /(\.safetensors|\.safetensors\.index\.json|\.bin|\.pt|\.pth|^trainer_state\.json|^adapter_config\.json|^README\.md)$/;

/** Copies config/tokenizer/processor files from `from` to `to` (not weights, not training state), each in one piece. */
export function copyModelFiles(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  if (path.resolve(from) === path.resolve(to)) return;
  for (const name of fs.readdirSync(from)) {
    const src = path.join(from, name);
    if (!fs.statSync(src).isFile() || SKIPPED.test(name)) continue;
    copyFileAtomic(src, path.join(to, name));
  }
}

/** Writes dir/model.safetensors from the model's slots (HF keys and layouts). */
export function writeModelWeights(dir: string, slots: readonly ParamSlot[], floatDType: 'F32' | 'BF16' | 'F16' = 'F32'): void {
  fs.mkdirSync(dir, { recursive: true });
  const tensors = checkpointTensors(slots);
  try {
    writeSafetensors(path.join(dir, SAFE_WEIGHTS_NAME), tensors, { format: 'pt' }, { floatDType });
  } finally {
    tf.dispose([...tensors.values()]);
  }
}
