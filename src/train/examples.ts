// Conversations → training examples: token ids, a mask of the assistant tokens (the only ones the loss
// sees) and pixels, through the model's own processor. Assistant spans are found as TRL finds them
// without generation tags: render the chat template up to each assistant turn with and without it,
// tokenise both, and the turn is the tokens between the two lengths.
import path from 'node:path';
import { TfvlmError } from '../errors.ts';
import { loadImage } from '../io/image.ts';
import type { Bitmap } from '../io/bitmap.ts';
import type { ProcessedInputs, VlmProcessor } from '../processing/processor.ts';
import { expandIdefics3Prompt, loadIdefics3PromptConfig, type Idefics3PromptConfig } from '../processing/idefics3-prompt.ts';
import type { TemplateMessage } from '../tokenizer/chat-template.ts';
import { conversationImages, resolveImagePath, type Conversation } from './jsonl.ts';
import type { AttentionTarget } from './attention-supervision.ts';

export interface TrainExample {
  input_ids: Int32Array;
  /** 1 where the token belongs to an assistant turn (its text and the end-of-turn tokens). */
  assistant_mask: Uint8Array;
  /** [tiles, C, H, W] of this example's images (shared between examples with the same images). */
  pixel_values?: Float32Array;
  pixel_attention_mask?: Uint8Array;
  /** [tiles, C, H, W] */
  pixelShape?: [number, number, number, number];
  /** Where chosen attention heads should look (used with TrainConfig.attentionSupervision). */
  attentionTargets?: AttentionTarget[];
}

function imagePartsBefore(conv: Conversation, end: number): number {
  return conv.messages.slice(0, end).reduce((n, m) => n + m.content.filter((p) => p.type === 'image').length, 0);
}

/** Tokens common to the start of both lists. */
function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/** The token ids of a one-prompt batch. */
function onlyRow(inputIds: number[][], where: string): number[] {
  const row = inputIds[0];
  if (!row) throw new TfvlmError(`${where}: the processor returned no token ids`);
  return row;
}

/** [tiles, C, H, W] from the processor's [1, tiles, C, H, W]. */
function tileShape(shape: readonly number[] | undefined, where: string): [number, number, number, number] {
  const [, tiles, C, H, W] = shape ?? [];
  if (shape?.length !== 5 || tiles === undefined || C === undefined || H === undefined || W === undefined) {
    throw new TfvlmError(`${where}: the processor returned pixel values of shape [${shape?.join(', ') ?? ''}], expected [1, tiles, C, H, W]`);
  }
  return [tiles, C, H, W];
}

type CachedPixels = Pick<TrainExample, 'pixel_values' | 'pixel_attention_mask' | 'pixelShape'> & { rows: number[]; cols: number[] };

export interface ExampleOptions {
  /** The JSONL file the conversations come from (image paths are relative to its folder). */
  jsonlFile: string;
  /** Decoded images by absolute path, shared across calls. */
  imageCache?: Map<string, Bitmap>;
  /** Pixel arrays by image list, shared across calls (examples of the same image share memory). */
  pixelCache?: Map<string, CachedPixels>;
  /** Idefics3 prompt expansion settings: prefixes are expanded here instead of re-running the image processor. */
  idefics3Prompt?: Idefics3PromptConfig;
}

/** One conversation → ids, assistant mask, pixels. Throws when it has no assistant turn. */
export async function buildExample(processor: VlmProcessor, conv: Conversation, where: string, opts: ExampleOptions): Promise<TrainExample> {
  const imageCache = opts.imageCache ?? new Map<string, Bitmap>();
  const files = conversationImages(conv).map((img) => resolveImagePath(opts.jsonlFile, img));
  const images: Bitmap[] = [];
  for (const file of files) {
    let bmp = imageCache.get(file);
    if (!bmp) {
      bmp = await loadImage(file);
      imageCache.set(file, bmp);
    }
    images.push(bmp);
  }
  const messages: TemplateMessage[] = conv.messages.map((m) => ({
    role: m.role,
    content: m.content.map((p) => (p.type === 'image' ? { type: 'image' } : { type: 'text', text: p.text })),
  }));
  const fullText = processor.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: false });
  const key = files.join('\n');
  const cached = opts.idefics3Prompt && files.length > 0 ? opts.pixelCache?.get(key) : undefined;
  const full = cached
    ? { input_ids: [processor.tokenizer.encode(expandIdefics3Prompt(fullText, cached.rows, cached.cols, opts.idefics3Prompt!))], rows: cached.rows, cols: cached.cols }
    : processor.process([fullText], [images]);
  const tokens = (end: number, addGenerationPrompt: boolean): number[] => {
    const text = processor.tokenizer.applyChatTemplate(messages.slice(0, end), { addGenerationPrompt });
    const n = imagePartsBefore(conv, end);
    if (opts.idefics3Prompt) {
      const expanded = expandIdefics3Prompt(text, full.rows.slice(0, n), full.cols.slice(0, n), opts.idefics3Prompt);
      return processor.tokenizer.encode(expanded);
    }
    return onlyRow(processor.process([text], [images.slice(0, n)]).input_ids, where);
  };
  const ids = onlyRow(full.input_ids, where);
  const mask = new Uint8Array(ids.length);
  let turns = 0;
  conv.messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    turns++;
    const start = commonPrefix(tokens(i, true), ids);
    const end = commonPrefix(tokens(i + 1, false), ids);
    for (let t = start; t < end; t++) mask[t] = 1;
  });
  if (turns === 0) throw new TfvlmError(`${where}: no assistant turn to learn from`);
  const example: TrainExample = { input_ids: Int32Array.from(ids), assistant_mask: mask };
  if (files.length > 0) {
    let px = opts.pixelCache?.get(key);
    if (!px) {
      const p = full as ProcessedInputs;
      px = { pixel_values: p.pixel_values, pixel_attention_mask: p.pixel_attention_mask, pixelShape: tileShape(p.pixelShape, where), rows: p.rows, cols: p.cols };
      opts.pixelCache?.set(key, px);
    }
    example.pixel_values = px.pixel_values;
    example.pixel_attention_mask = px.pixel_attention_mask;
    example.pixelShape = px.pixelShape;
  }
  return example;
}

/** Every conversation of a file → examples (images decoded once). `onProgress` gets the count done. */
export async function buildExamples(processor: VlmProcessor, conversations: readonly Conversation[], jsonlFile: string,
  onProgress?: (done: number) => void): Promise<TrainExample[]> {
  const opts: ExampleOptions = { jsonlFile: path.resolve(jsonlFile), imageCache: new Map(), pixelCache: new Map() };
  if (processor.family === 'idefics3') {
    opts.idefics3Prompt = await loadIdefics3PromptConfig(processor.dir, processor.tokenizer.settings.extraSpecialTokens);
  }
  const out: TrainExample[] = [];
  for (const [i, conv] of conversations.entries()) {
    out.push(await buildExample(processor, conv, `${jsonlFile}: conversation ${i + 1}`, opts));
    if (onProgress && (i + 1) % 100 === 0) onProgress(i + 1);
  }
  return out;
}

/** Tokens the loss is computed on (assistant tokens, each predicted from the previous position). */
export function supervisedTokens(e: TrainExample): number {
  let n = 0;
  for (let t = 1; t < e.assistant_mask.length; t++) n += e.assistant_mask[t]!;
  return n;
}
