// Retrieval with a dual encoder (CLIPModel / SiglipModel): each image and each text embedded once by
// its own tower, score = the model's logits_per_image (scaled cosine; SigLIP adds logit_bias). The
// folder's own image processor and tokenizer prepare the inputs as CLIPProcessor / SiglipProcessor do
// (CLIP: padding=True; SigLIP: padding="max_length", truncated to fit its position table).
import fs from 'node:fs';
import path from 'node:path';
import { initBackend, tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { loadImage, type ImageSource } from '../io/image.ts';
import { CLIPModel } from '../models/clip/model.ts';
import { SiglipModel } from '../models/siglip/model.ts';
import { CLIPImageProcessor } from '../processing/clip-image-processor.ts';
import { createImageProcessor, loadPreprocessorConfig, type PreprocessorOverrides } from '../processing/preprocessor-config.ts';
import { SiglipImageProcessor } from '../processing/siglip-image-processor.ts';
import { SiglipTokenizer } from '../tokenizer/sentencepiece-unigram.ts';
import { loadTokenizer, type Tokenizer } from '../tokenizer/index.ts';

export const DUAL_ENCODER_TYPES = ['clip', 'siglip'];

/** True when config.json in dir describes a CLIPModel or SiglipModel. */
export function isDualEncoderFolder(dir: string): boolean {
  try {
    const raw = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    return DUAL_ENCODER_TYPES.includes(raw.model_type);
  } catch {
    return false;
  }
}

export interface DualScores {
  /** logits_per_image [n_images][n_texts]. */
  logits: number[][];
  /** softmax over the texts for CLIP (what CLIP's docs show); sigmoid(logits) for SigLIP. */
  probs: number[][];
  /** L2-normalised embeddings. */
  imageEmbeds: number[][];
  textEmbeds: number[][];
}

/** Row-major float32 embeddings [n, dim]. */
export interface EmbeddingArray {
  data: Float32Array;
  shape: [number, number];
}

const rowsOf = (t: tf.Tensor): number[][] => t.arraySync() as number[][];

export class DualEncoder {
  private constructor(
    readonly dir: string,
    readonly model: CLIPModel | SiglipModel,
    private readonly imageProcessor: CLIPImageProcessor | SiglipImageProcessor,
    private readonly tokenizer: Tokenizer | SiglipTokenizer,
  ) {}

  /** options.convertRgb: convert images to RGB whatever the folder's preprocessor config says. */
  static async load(dir: string, options: PreprocessorOverrides = {}): Promise<DualEncoder> {
    await initBackend();
    const raw = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    const imageProcessor = createImageProcessor(loadPreprocessorConfig(dir, options));
    if (raw.model_type === 'clip') {
      if (!(imageProcessor instanceof CLIPImageProcessor)) {
        throw new TfvlmError(`${dir}/preprocessor_config.json: a CLIPModel needs a CLIPImageProcessor, got ${imageProcessor.constructor.name}`);
      }
      return new DualEncoder(dir, await CLIPModel.load(dir), imageProcessor, await loadTokenizer(dir));
    }
    if (raw.model_type === 'siglip') {
      if (!(imageProcessor instanceof SiglipImageProcessor)) {
        throw new TfvlmError(`${dir}/preprocessor_config.json: a SiglipModel needs a SiglipImageProcessor, got ${imageProcessor.constructor.name}`);
      }
      // SigLIP ships spiece.model (SiglipTokenizer); later SigLIP-family folders ship a tokenizer.json instead.
      const tokenizer = fs.existsSync(path.join(dir, 'spiece.model')) ? SiglipTokenizer.load(dir) : await loadTokenizer(dir);
      return new DualEncoder(dir, await SiglipModel.load(dir), imageProcessor, tokenizer);
    }
    throw new TfvlmError(`${dir}/config.json: model_type ${JSON.stringify(raw.model_type)} is not a dual encoder (${DUAL_ENCODER_TYPES.join(', ')})`);
  }

  get kind(): 'clip' | 'siglip' {
    return this.model.kind as 'clip' | 'siglip';
  }

  /** input_ids (+ attention_mask for CLIP) as the folder's processor makes them. */
  tokenize(texts: string[]): { input_ids: number[][]; attention_mask?: number[][] } {
    if (this.tokenizer instanceof SiglipTokenizer) {
      const maxLength = Math.min(this.tokenizer.modelMaxLength, this.model.config.text_config.max_position_embeddings);
      return { input_ids: this.tokenizer.encodeBatch(texts, { padding: 'max_length', maxLength, truncation: true }).input_ids };
    }
    if (this.kind === 'siglip') {
      const maxLength = Math.min(this.tokenizer.settings.model_max_length ?? Infinity, this.model.config.text_config.max_position_embeddings);
      return { input_ids: this.tokenizer.encodeBatch(texts, { padding: 'max_length', maxLength, truncation: true }).input_ids };
    }
    // CLIPProcessor(padding=True, truncation=True): a long text keeps its final <|endoftext|> (the pooled row).
    const maxLength = Math.min(this.model.config.text_config.max_position_embeddings, this.tokenizer.settings.model_max_length ?? Infinity);
    const tok = this.tokenizer;
    const rows = texts.map((t) => {
      const ids = tok.encode(t);
      return ids.length <= maxLength ? ids : [...ids.slice(0, maxLength - 1), ids[ids.length - 1]!]; // longer than maxLength: not empty
    });
    const T = Math.max(...rows.map((r) => r.length));
    const pad = tok.padTokenId ?? rows[0]?.at(-1);
    if (pad === undefined) throw new TfvlmError('give at least one text');
    return {
      input_ids: rows.map((r) => [...r, ...new Array<number>(T - r.length).fill(pad)]),
      attention_mask: rows.map((r) => [...new Array<number>(r.length).fill(1), ...new Array<number>(T - r.length).fill(0)]),
    };
  }

  /** image_embeds tensor [n_images, dim]; the caller disposes it. */
  async imageEmbeds(images: ImageSource[]): Promise<tf.Tensor> {
    if (images.length === 0) throw new TfvlmError('give at least one image');
    const decoded = await Promise.all(images.map((s) => loadImage(s)));
    const px = this.imageProcessor.preprocess(decoded);
    const pixels = tf.tensor(px.pixel_values, px.shape, 'float32');
    try {
      return this.model.embedImages(pixels);
    } finally {
      pixels.dispose();
    }
  }

  /** text_embeds tensor [n_texts, dim]; the caller disposes it. */
  textEmbeds(texts: string[]): tf.Tensor {
    if (texts.length === 0) throw new TfvlmError('give at least one text');
    const enc = this.tokenize(texts);
    return this.model.embedTexts(enc.input_ids, enc.attention_mask);
  }

  /** Full score matrix [n_images][n_texts]. */
  async score(images: ImageSource[], texts: string[]): Promise<DualScores> {
    const img = await this.imageEmbeds(images);
    const txt = this.textEmbeds(texts);
    try {
      const logits = this.model.logits(img, txt);
      const probs = tf.tidy(() => (this.kind === 'siglip' ? tf.sigmoid(logits) : tf.softmax(logits, -1)));
      const out = { logits: rowsOf(logits), probs: rowsOf(probs), imageEmbeds: rowsOf(img), textEmbeds: rowsOf(txt) };
      tf.dispose([logits, probs]);
      return out;
    } finally {
      tf.dispose([img, txt]);
    }
  }

  /** image_embeds and/or text_embeds as host arrays (for writing to safetensors / JSON), e.g. for `tfvlm embed`. */
  async embedArrays(images: ImageSource[], texts: string[]): Promise<Record<'image_embeds' | 'text_embeds', EmbeddingArray | undefined>> {
    const toArray = (t: tf.Tensor): EmbeddingArray => {
      const out = { data: t.dataSync() as Float32Array, shape: t.shape as [number, number] };
      t.dispose();
      return out;
    };
    return {
      image_embeds: images.length ? toArray(await this.imageEmbeds(images)) : undefined,
      text_embeds: texts.length ? toArray(this.textEmbeds(texts)) : undefined,
    };
  }

  dispose(): void {
    this.model.dispose();
  }
}
