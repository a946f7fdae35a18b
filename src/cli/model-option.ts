// Where `--model` points when it is not given: $TFVLM_MODEL, else the demo model shipped in weights/.
import fs from 'node:fs';
import { DEMO_MODEL_DIR } from '../engine.ts';
import { TfvlmError } from '../errors.ts';
import type { ParsedArgs } from './command.ts';

export const MODEL_OPTION_HELP =
  '--model DIR|ID      model folder or hub id org/name[@rev] (default: $TFVLM_MODEL, else the shipped demo model weights/tfvlm-demo)';

export function modelSpec(args: ParsedArgs): string {
  const given = args.values.model;
  if (typeof given === 'string' && given) return given;
  if (process.env.TFVLM_MODEL) return process.env.TFVLM_MODEL;
  if (fs.existsSync(`${DEMO_MODEL_DIR}/config.json`)) return DEMO_MODEL_DIR;
  throw new TfvlmError('no --model given and the demo model weights/tfvlm-demo is not present; pass --model DIR');
}
