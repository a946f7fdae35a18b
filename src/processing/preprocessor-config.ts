// preprocessor_config.json with Hugging Face field names, and the defaults each transformers image
// processor applies when a field is absent (transformers 4.47 Idefics3ImageProcessor /
// CLIPImageProcessor / SiglipImageProcessor `__init__`, image_processing_utils.get_size_dict).
import { host } from '../io/host.ts';
import { TfvlmError } from '../errors.ts';
import { type ResamplingFilter, Resampling, isResamplingFilter } from './resample.ts';
import { Idefics3ImageProcessor, MAX_IMAGE_SIZE } from './idefics3-image-processor.ts';
import { CLIPImageProcessor } from './clip-image-processor.ts';
import { SiglipImageProcessor } from './siglip-image-processor.ts';

export const IMAGENET_STANDARD_MEAN = [0.5, 0.5, 0.5];
export const IMAGENET_STANDARD_STD = [0.5, 0.5, 0.5];
export const OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

export interface HeightWidth {
  height: number;
  width: number;
}

interface CommonImageConfig {
  do_convert_rgb: boolean | null;
  do_resize: boolean;
  resample: ResamplingFilter;
  do_rescale: boolean;
  rescale_factor: number;
  do_normalize: boolean;
  image_mean: number[];
  image_std: number[];
}

export interface Idefics3ImageProcessorConfig extends CommonImageConfig {
  image_processor_type: 'Idefics3ImageProcessor';
  size: { longest_edge: number } | HeightWidth;
  do_image_splitting: boolean;
  max_image_size: { longest_edge: number };
  do_pad: boolean;
}

export interface CLIPImageProcessorConfig extends CommonImageConfig {
  image_processor_type: 'CLIPImageProcessor';
  size: { shortest_edge: number } | HeightWidth;
  do_center_crop: boolean;
  crop_size: HeightWidth;
}

export interface SiglipImageProcessorConfig extends CommonImageConfig {
  image_processor_type: 'SiglipImageProcessor';
  size: HeightWidth;
}

export type ImageProcessorConfig = Idefics3ImageProcessorConfig | CLIPImageProcessorConfig | SiglipImageProcessorConfig;

const TYPE_ALIASES: Record<string, ImageProcessorConfig['image_processor_type']> = {
  Idefics3ImageProcessor: 'Idefics3ImageProcessor',
  // SmolVLM2 folders; modular_smolvlm.py: `class SmolVLMImageProcessor(Idefics3ImageProcessor): pass`.
  SmolVLMImageProcessor: 'Idefics3ImageProcessor',
  CLIPImageProcessor: 'CLIPImageProcessor',
  CLIPFeatureExtractor: 'CLIPImageProcessor',
  SiglipImageProcessor: 'SiglipImageProcessor',
};

type Json = Record<string, unknown>;

export class FieldReader {
  constructor(readonly raw: Json, readonly source: string) {}

  fail(field: string, why: string): never {
    throw new TfvlmError(`${this.source}: field "${field}" ${why} (got ${JSON.stringify(this.raw[field])})`);
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.raw[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') this.fail(field, 'must be true or false');
    return v;
  }

  positiveInt(field: string, v: unknown, max = Infinity): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) this.fail(field, 'must hold positive integers');
    if (v > max) this.fail(field, `must hold sizes of at most ${max} pixels`);
    return v;
  }

  number(field: string, fallback: number): number {
    const v = this.raw[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(field, 'must be a finite number');
    return v;
  }

  /** A float or a list of floats (one per channel); a single float is repeated over 3 channels. */
  floats(field: string, fallback: number[], nonZero = false): number[] {
    const v = this.raw[field];
    if (v === undefined || v === null) return fallback;
    const list = typeof v === 'number' ? [v, v, v] : v;
    if (!Array.isArray(list) || list.length === 0 || !list.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      this.fail(field, 'must be a number or a list of numbers');
    }
    if (nonZero && list.some((x) => x === 0)) this.fail(field, 'must not contain 0');
    return list as number[];
  }

  resample(fallback: ResamplingFilter): ResamplingFilter {
    const v = this.raw.resample;
    if (v === undefined || v === null) return fallback;
    if (!isResamplingFilter(v)) this.fail('resample', 'must be a PIL resampling filter 0..5');
    return v;
  }

  /**
   * get_size_dict: an int, a [height, width] pair, or a dict with the allowed keys. Sizes above
   * `max` are refused: the processor would allocate images of that side (1e9 threw a RangeError).
   */
  size(field: string, fallback: Json, intMeans: 'shortest_edge' | 'square' | 'longest_edge', max = MAX_IMAGE_SIZE): Json {
    const v = this.raw[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'number') {
      const n = this.positiveInt(field, v, max);
      return intMeans === 'square' ? { height: n, width: n } : { [intMeans]: n };
    }
    if (Array.isArray(v) && v.length === 2) return { height: this.positiveInt(field, v[0], max), width: this.positiveInt(field, v[1], max) };
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(field, 'must be an integer or an object');
    const out: Json = {};
    for (const [k, x] of Object.entries(v as Json)) if (x !== null && x !== undefined) out[k] = this.positiveInt(field, x, max);
    return out;
  }
}

export function pickSize<K extends string>(r: FieldReader, field: string, size: Json, keys: K[][]): Record<K, number> {
  for (const set of keys) if (set.every((k) => k in size)) return Object.fromEntries(set.map((k) => [k, size[k] as number])) as Record<K, number>;
  return r.fail(field, `must have ${keys.map((s) => s.join(' + ')).join(' or ')}`);
}

/** Parses the JSON object of a preprocessor_config.json; `source` names it in errors. */
export function parsePreprocessorConfig(raw: unknown, source = 'preprocessor_config.json'): ImageProcessorConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new TfvlmError(`${source}: expected a JSON object`);
  const json = raw as Json;
  const typeName = (json.image_processor_type ?? json.feature_extractor_type) as unknown;
  const type = typeof typeName === 'string' ? TYPE_ALIASES[typeName] : undefined;
  if (type === undefined) {
    throw new TfvlmError(
      `${source}: unsupported image_processor_type ${JSON.stringify(typeName)} ` +
        `(supported: ${Object.keys(TYPE_ALIASES).join(', ')})`,
    );
  }
  const r = new FieldReader(json, source);
  const isClip = type === 'CLIPImageProcessor';
  const common = {
    do_resize: r.bool('do_resize', true),
    resample: r.resample(type === 'Idefics3ImageProcessor' ? Resampling.LANCZOS : Resampling.BICUBIC),
    do_rescale: r.bool('do_rescale', true),
    rescale_factor: r.number('rescale_factor', 1 / 255),
    do_normalize: r.bool('do_normalize', true),
    image_mean: r.floats('image_mean', isClip ? OPENAI_CLIP_MEAN : IMAGENET_STANDARD_MEAN),
    image_std: r.floats('image_std', isClip ? OPENAI_CLIP_STD : IMAGENET_STANDARD_STD, true),
  };
  if (common.image_mean.length !== common.image_std.length) {
    r.fail('image_std', `must have as many entries as image_mean (${common.image_mean.length})`);
  }
  if (type === 'Idefics3ImageProcessor') {
    // transformers caps the longest-edge resize at MAX_IMAGE_SIZE itself, so a larger size.longest_edge is valid.
    const raw = json.size;
    const longest = typeof raw === 'number' || (typeof raw === 'object' && raw !== null && 'longest_edge' in raw);
    const size = r.size('size', { longest_edge: 4 * 364 }, 'longest_edge', longest ? Number.MAX_SAFE_INTEGER : MAX_IMAGE_SIZE);
    const maxImage = r.size('max_image_size', { longest_edge: 364 }, 'longest_edge');
    return {
      image_processor_type: type,
      ...common,
      do_convert_rgb: r.bool('do_convert_rgb', true),
      size: pickSize(r, 'size', size, [['longest_edge'], ['height', 'width']]) as Idefics3ImageProcessorConfig['size'],
      do_image_splitting: r.bool('do_image_splitting', true),
      max_image_size: pickSize(r, 'max_image_size', maxImage, [['longest_edge']]),
      do_pad: r.bool('do_pad', true),
    };
  }
  if (type === 'CLIPImageProcessor') {
    const size = r.size('size', { shortest_edge: 224 }, 'shortest_edge');
    const crop = r.size('crop_size', { height: 224, width: 224 }, 'square');
    return {
      image_processor_type: type,
      ...common,
      do_convert_rgb: r.bool('do_convert_rgb', true),
      size: pickSize(r, 'size', size, [['shortest_edge'], ['height', 'width']]) as CLIPImageProcessorConfig['size'],
      do_center_crop: r.bool('do_center_crop', true),
      crop_size: pickSize(r, 'crop_size', crop, [['height', 'width']]),
    };
  }
  const size = r.size('size', { height: 224, width: 224 }, 'square');
  const convert = json.do_convert_rgb;
  return {
    image_processor_type: type,
    ...common,
    do_convert_rgb: convert === undefined || convert === null ? null : r.bool('do_convert_rgb', false),
    size: pickSize(r, 'size', size, [['height', 'width']]),
  };
}

/** Reads `<dir>/preprocessor_config.json` (or the given file). */
/** Overrides of a loaded preprocessor config. */
export interface PreprocessorOverrides {
  /** Convert inputs to RGB (do_convert_rgb: true) where the config leaves it unset or off. */
  convertRgb?: boolean;
}

export function loadPreprocessorConfig(dirOrFile: string, overrides: PreprocessorOverrides = {}): ImageProcessorConfig {
  const config = readPreprocessorConfig(dirOrFile);
  return overrides.convertRgb ? { ...config, do_convert_rgb: true } : config;
}

function readPreprocessorConfig(dirOrFile: string): ImageProcessorConfig {
  let file = dirOrFile;
  const h = host();
  let st;
  try {
    st = h.stat(dirOrFile);
  } catch {
    st = undefined;
  }
  if (st === undefined) throw new TfvlmError(`cannot read preprocessor config ${dirOrFile}: no such file or directory`);
  if (st.kind === 'directory') file = h.join(dirOrFile, 'preprocessor_config.json');
  let text: string;
  try {
    text = h.readText(file);
  } catch (e) {
    throw new TfvlmError(`cannot read preprocessor config ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TfvlmError(`${file}: invalid JSON (${(e as Error).message})`);
  }
  return parsePreprocessorConfig(json, file);
}

export type ImageProcessor = Idefics3ImageProcessor | CLIPImageProcessor | SiglipImageProcessor;

/** The processor class `image_processor_type` names. */
export function createImageProcessor(config: ImageProcessorConfig): ImageProcessor {
  switch (config.image_processor_type) {
    case 'Idefics3ImageProcessor':
      return new Idefics3ImageProcessor(config);
    case 'CLIPImageProcessor':
      return new CLIPImageProcessor(config);
    case 'SiglipImageProcessor':
      return new SiglipImageProcessor(config);
  }
}
