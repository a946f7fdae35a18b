// The whole request → model inputs path, as transformers' Idefics3Processor / LlavaProcessor do it:
// chat template → image processor → prompt expansion (image token blocks) → tokenizer.
import fs from 'node:fs';
import path from 'node:path';
import { TfvlmError } from '../errors.ts';
import { loadImage, type ImageSource } from '../io/image.ts';
import { loadTokenizer, type Tokenizer } from '../tokenizer/index.ts';
import type { Bitmap } from './image.ts';
import { CLIPImageProcessor } from './clip-image-processor.ts';
import { Idefics3ImageProcessor } from './idefics3-image-processor.ts';
import { createImageProcessor, loadPreprocessorConfig } from './preprocessor-config.ts';
import { expandIdefics3Prompt, loadIdefics3PromptConfig, type Idefics3PromptConfig } from './idefics3-prompt.ts';
import { LLAVA_15_CHAT_TEMPLATE, expandLlavaPrompt, loadLlavaPromptConfig, type LlavaPromptConfig } from './llava-prompt.ts';
import { imageSourceOf, parseMessages, toTemplateMessages, type ParsedRequest } from './messages.ts';

/** Model inputs for a batch of B prompts, as plain arrays (the engine turns them into tensors). */
export interface ProcessedInputs {
  /** Rendered prompts (chat template applied, `<image>` markers not yet expanded). */
  prompts: string[];
  /** The exact strings handed to the tokenizer. */
  promptsExpanded: string[];
  input_ids: number[][];
  attention_mask: number[][];
  /** Idefics3: `[B, tiles, 3, H, W]`; LLaVA: `[images, 3, H, W]`. Absent without images. */
  pixel_values?: Float32Array;
  pixelShape?: number[];
  /** Idefics3: `[B, tiles, H, W]`, 1 = real pixel. */
  pixel_attention_mask?: Uint8Array;
  /** Per image: tile rows / cols (0 = not split). */
  rows: number[];
  cols: number[];
}

export interface ProcessOptions {
  /** Add the assistant turn opener after the last message (default true). */
  addGenerationPrompt?: boolean;
  /** Overrides preprocessor_config.json `do_image_splitting` (Idefics3 only). */
  imageSplitting?: boolean;
  /** Padding side for batches (default: tokenizer_config.json `padding_side`, else right). */
  paddingSide?: 'left' | 'right';
}

type Family = 'idefics3' | 'llava';

/** model_type → how images become prompt tokens. */
const FAMILIES: Record<string, Family> = { idefics3: 'idefics3', smolvlm: 'idefics3', llava: 'llava' };

export class VlmProcessor {
  private constructor(
    readonly dir: string,
    readonly family: Family,
    readonly tokenizer: Tokenizer,
    private readonly imageProcessor: Idefics3ImageProcessor | CLIPImageProcessor,
    private readonly promptConfig: Idefics3PromptConfig | LlavaPromptConfig,
  ) {}

  static async load(dir: string): Promise<VlmProcessor> {
    const configFile = path.join(dir, 'config.json');
    let modelType: unknown;
    try {
      modelType = JSON.parse(fs.readFileSync(configFile, 'utf8')).model_type;
    } catch (e) {
      throw new TfvlmError(`cannot read ${configFile}: ${(e as Error).message}`);
    }
    const family = FAMILIES[String(modelType)];
    if (!family) {
      throw new TfvlmError(`${configFile}: model_type ${JSON.stringify(modelType)} has no processor here (known: ${Object.keys(FAMILIES).join(', ')})`);
    }
    const tokenizer = await loadTokenizer(dir);
    const imageProcessor = createImageProcessor(loadPreprocessorConfig(dir));
    const extra = tokenizer.settings.extraSpecialTokens;
    if (family === 'idefics3') {
      if (!(imageProcessor instanceof Idefics3ImageProcessor)) {
        throw new TfvlmError(`${path.join(dir, 'preprocessor_config.json')}: ${String(modelType)} needs an Idefics3ImageProcessor`);
      }
      return new VlmProcessor(dir, family, tokenizer, imageProcessor, await loadIdefics3PromptConfig(dir, extra));
    }
    if (!(imageProcessor instanceof CLIPImageProcessor)) {
      throw new TfvlmError(`${path.join(dir, 'preprocessor_config.json')}: llava needs a CLIPImageProcessor`);
    }
    return new VlmProcessor(dir, family, tokenizer, imageProcessor, await loadLlavaPromptConfig(dir, extra));
  }

  /** The id of the token that image features replace. */
  get imageTokenId(): number {
    const id = this.tokenizer.tokenToId(this.promptConfig.image_token);
    if (id === undefined || id === null) throw new TfvlmError(`${this.dir}: the tokenizer has no ${this.promptConfig.image_token} token`);
    return id;
  }

  /**
   * Renders chat messages (the request format of `--messages`) with the checkpoint's chat template;
   * a llava folder without one gets the LLaVA-1.5 `USER: … ASSISTANT:` format.
   */
  renderMessages(request: ParsedRequest, options: ProcessOptions = {}): string {
    const fallback = this.family === 'llava' && !this.tokenizer.hasChatTemplate ? { chatTemplate: LLAVA_15_CHAT_TEMPLATE } : {};
    return this.tokenizer.applyChatTemplate(toTemplateMessages(request.messages), {
      addGenerationPrompt: options.addGenerationPrompt ?? true,
      ...fallback,
    });
  }

  /**
   * One conversation or a batch of conversations → model inputs. Images come from the messages
   * (paths resolved against `baseDir`), or, for bare `{"type":"image"}` parts, from `images`.
   */
  async fromMessages(
    conversations: unknown | unknown[][],
    options: ProcessOptions & { baseDir?: string; images?: ImageSource[][] } = {},
  ): Promise<ProcessedInputs> {
    const batch = isBatch(conversations) ? conversations : [conversations];
    const prompts: string[] = [];
    const images: Bitmap[][] = [];
    for (let b = 0; b < batch.length; b++) {
      const request = parseMessages(batch[b], { baseDir: options.baseDir });
      prompts.push(this.renderMessages(request, options));
      const supplied = options.images?.[b] ?? [];
      let next = 0;
      images.push(
        await Promise.all(
          request.images.map((ref, i) =>
            loadImage(ref.kind === 'none' ? suppliedImage(supplied, next++, b) : imageSourceOf(ref, `conversation ${b} image ${i}`) as ImageSource),
          ),
        ),
      );
      if (next < supplied.length) {
        throw new TfvlmError(`conversation ${b}: ${supplied.length} image(s) supplied but only ${next} bare {"type":"image"} part(s) to use them`);
      }
    }
    return this.process(prompts, images, options);
  }

  /** Raw prompts with `<image>` markers (no template), one image list per prompt. */
  async fromPrompt(prompt: string | string[], images: ImageSource[] | ImageSource[][] = [], options: ProcessOptions = {}): Promise<ProcessedInputs> {
    const prompts = Array.isArray(prompt) ? prompt : [prompt];
    const lists: ImageSource[][] = Array.isArray(prompt) ? (images as ImageSource[][]) : [images as ImageSource[]];
    const bad = prompts.findIndex((p) => typeof p !== 'string');
    if (bad >= 0) throw new TfvlmError(`prompt${Array.isArray(prompt) ? `[${bad}]` : ''} must be a string, got ${prompts[bad] === null ? 'null' : typeof prompts[bad]}`);
    if (!Array.isArray(lists) || !lists.every((l) => l === undefined || l === null || Array.isArray(l))) {
      throw new TfvlmError(`images must be a list of image sources${Array.isArray(prompt) ? ', one list per prompt' : ''}`);
    }
    if (lists.length !== prompts.length) {
      throw new TfvlmError(`${prompts.length} prompt(s) but ${lists.length} image list(s); give one image list per prompt`);
    }
    const decoded = await Promise.all(lists.map((list) => Promise.all((list ?? []).map((src) => loadImage(src)))));
    return this.process(prompts, decoded, options);
  }

  /** Pixel inputs of one prompt's images alone (used to continue a cached conversation). */
  pixels(images: Bitmap[], options: ProcessOptions = {}): Pick<ProcessedInputs, 'pixel_values' | 'pixelShape' | 'pixel_attention_mask'> {
    if (images.length === 0) return {};
    if (this.family === 'idefics3') {
      const out = (this.imageProcessor as Idefics3ImageProcessor).preprocess([images], { do_image_splitting: options.imageSplitting });
      return { pixel_values: out.pixel_values, pixelShape: out.shape, pixel_attention_mask: out.pixel_attention_mask };
    }
    const out = (this.imageProcessor as CLIPImageProcessor).preprocess(images);
    return { pixel_values: out.pixel_values, pixelShape: out.shape };
  }

  /** Rendered prompts + decoded images → expanded prompts, token ids and pixels. */
  process(prompts: string[], images: Bitmap[][], options: ProcessOptions = {}): ProcessedInputs {
    const withImages = images.some((list) => list.length > 0);
    let promptsExpanded: string[];
    let rows: number[] = [];
    let cols: number[] = [];
    let pixels: Pick<ProcessedInputs, 'pixel_values' | 'pixelShape' | 'pixel_attention_mask'> = {};
    if (this.family === 'idefics3') {
      const cfg = this.promptConfig as Idefics3PromptConfig;
      if (withImages) {
        if (images.some((list) => list.length === 0)) {
          throw new TfvlmError('in a batch with images, every prompt needs at least one image (transformers Idefics3Processor requires it too)');
        }
        const out = (this.imageProcessor as Idefics3ImageProcessor).preprocess(images, {
          do_image_splitting: options.imageSplitting,
        });
        rows = out.rows;
        cols = out.cols;
        pixels = { pixel_values: out.pixel_values, pixelShape: out.shape, pixel_attention_mask: out.pixel_attention_mask };
      }
      let k = 0;
      promptsExpanded = prompts.map((p, b) => {
        const n = images[b].length;
        const expanded = expandIdefics3Prompt(p, rows.slice(k, k + n), cols.slice(k, k + n), cfg);
        k += n;
        return expanded;
      });
    } else {
      const cfg = this.promptConfig as LlavaPromptConfig;
      const flat = images.flat();
      let size = { height: 0, width: 0 };
      if (flat.length > 0) {
        const out = (this.imageProcessor as CLIPImageProcessor).preprocess(flat);
        pixels = { pixel_values: out.pixel_values, pixelShape: out.shape };
        size = { height: out.shape[2], width: out.shape[3] };
      }
      promptsExpanded = prompts.map((p, b) => expandLlavaPrompt(p, images[b].length, size, cfg));
    }
    const encoded = this.tokenizer.encodeBatch(promptsExpanded, {
      padding: 'longest',
      ...(options.paddingSide ? { paddingSide: options.paddingSide } : {}),
    });
    return { prompts, promptsExpanded, ...encoded, ...pixels, rows, cols };
  }
}

function isBatch(x: unknown): x is unknown[][] {
  return Array.isArray(x) && x.length > 0 && Array.isArray(x[0]);
}

function suppliedImage(list: ImageSource[], i: number, b: number): ImageSource {
  if (i >= list.length) {
    throw new TfvlmError(`conversation ${b}: more {"type":"image"} parts than the ${list.length} image(s) supplied`);
  }
  return list[i];
}
