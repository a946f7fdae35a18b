// config.json's quantization block as mlx-lm and mlx-vlm write and read it
// (docs/notes/mlx-quantization.md, sections 6–7):
//
//   "quantization": {"group_size": G, "bits": B, "mode": "affine",
//                    "<module path>": {"group_size": g, "bits": b} | false, …}
//   "quantization_config": the same object again
//
// Whether a layer is quantized is decided, as mlx-vlm loads, by its `.scales` tensor being present;
// this says with which parameters, or (a per-layer `false`) that it must stay float.
import { TfvlmError } from '../errors.ts';
import { checkQuantizationParams, type MlxQuantization } from './mlx-affine.ts';

/** Module path in MLX's tree (e.g. `language_model.layers.0.mlp.down_proj`) → its quantization; undefined: stays float. */
export type QuantizationLookup = (modulePath: string) => MlxQuantization | undefined;

/** What a per-layer dict lacking a field gets: mlx.nn's defaults for "affine" (_defaults_for_mode), not the top level's. */
const MLX_AFFINE_DEFAULTS: MlxQuantization = { groupSize: 64, bits: 4 };
const BLOCK_FIELDS = new Set(['group_size', 'bits', 'mode']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readInteger(entry: Record<string, unknown>, name: string, field: string, fallback: number | undefined): number {
  const v = entry[name];
  if (v === undefined && fallback !== undefined) return fallback;
  if (v === undefined) throw new TfvlmError(`${field}.${name} is missing`);
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new TfvlmError(`${field}.${name} must be an integer, got ${JSON.stringify(v)}`);
  return v;
}

function readParams(entry: Record<string, unknown>, field: string, fallback: MlxQuantization | undefined): MlxQuantization {
  if (entry.mode !== undefined && entry.mode !== 'affine') {
    throw new TfvlmError(`${field}.mode ${JSON.stringify(entry.mode)} is not supported: tfvlm reads MLX's "affine" quantization`);
  }
  const params = {
    groupSize: readInteger(entry, 'group_size', field, fallback?.groupSize),
    bits: readInteger(entry, 'bits', field, fallback?.bits),
  };
  checkQuantizationParams(params, field);
  return params;
}

/** The block mlx-lm/mlx-vlm read: "quantization"; "quantization_config" only when that is absent and has MLX's shape. */
function quantizationBlock(config: Record<string, unknown>): { block: Record<string, unknown>; name: string } | undefined {
  for (const name of ['quantization', 'quantization_config']) {
    const block = config[name];
    if (block === undefined || block === null) continue;
    if (!isRecord(block)) throw new TfvlmError(`config.json ${name} must be an object, got ${JSON.stringify(block)}`);
    if (block.quant_method !== undefined) {
      throw new TfvlmError(`config.json ${name}.quant_method ${JSON.stringify(block.quant_method)} is not MLX's affine quantization, which is all tfvlm reads`);
    }
    return { block, name };
  }
  return undefined;
}

/** Reads config.json's quantization block; a config without one gives a lookup that always answers undefined. */
export function parseQuantizationConfig(rawConfig: unknown): QuantizationLookup {
  if (!isRecord(rawConfig)) throw new TfvlmError('config.json must be an object');
  const found = quantizationBlock(rawConfig);
  if (!found) return () => undefined;
  const { block, name } = found;
  const defaults = readParams(block, `config.json ${name}`, undefined);
  const perLayer = new Map<string, MlxQuantization | undefined>();
  for (const [path, entry] of Object.entries(block)) {
    if (BLOCK_FIELDS.has(path)) continue;
    const field = `config.json ${name}[${JSON.stringify(path)}]`;
    if (entry === false) perLayer.set(path, undefined);
    else if (entry === true) perLayer.set(path, defaults);
    else if (isRecord(entry)) perLayer.set(path, readParams(entry, field, MLX_AFFINE_DEFAULTS));
    else throw new TfvlmError(`${field} must be {"group_size", "bits"} or false, got ${JSON.stringify(entry)}`);
  }
  return (modulePath) => (perLayer.has(modulePath) ? perLayer.get(modulePath) : defaults);
}
