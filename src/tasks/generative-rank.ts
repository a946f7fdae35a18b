// Retrieval with a generative VLM (SmolVLM / LLaVA): the score of text t for image i is the
// log-likelihood of t as the assistant's answer to (image i + prompt), by teacher forcing:
//   score(i, t) = Σ_k log p(a_k | image, prompt, a_<k)   (a = the answer's tokens)
// The image and prompt are encoded once per image; their KV prefix is tiled over the candidates, which
// run as one padded forward [n, L] per batch. The mean per token is reported too (it favours neither
// short nor long candidates). Scoring images for a text reads a column of the same matrix.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import type { Vlm } from '../engine.ts';
import type { ImageSource } from '../io/image.ts';
import type { LlamaDecoder } from '../models/llama/model.ts';
import { parseMessages } from '../processing/messages.ts';
import type { ProcessedInputs } from '../processing/processor.ts';
import { DEFAULT_CAPTION_PROMPT, userTurn } from './prompts.ts';
import { ConcatKVCache, disposeKVCaches } from '../layers/kv-cache.ts';

export interface GenerativeRankOptions {
  /** The user's instruction asked with each image (default "Describe this image."). */
  prompt?: string;
  /** Candidates per batched forward (default 16). */
  batchSize?: number;
}

export interface GenerativeScores {
  /** Σ log p(answer tokens) [n_images][n_texts]: the ranking score. */
  logProb: number[][];
  /** logProb / answer length [n_images][n_texts]. */
  meanLogProb: number[][];
  /** Answer token ids per text (what was scored). */
  answerIds: number[][];
}

const MARK = '\u0001ANSWER\u0001';

function decoderOf(vlm: Vlm): LlamaDecoder {
  const text = (vlm.model as { text?: LlamaDecoder }).text;
  if (!text || typeof text.forward !== 'function') throw new TfvlmError(`${vlm.dir}: generative ranking needs a decoder model (SmolVLM, LLaVA)`);
  return text;
}

/** The token ids of the processed prompt (one prompt: one row). */
function promptIds(inputs: ProcessedInputs): number[] {
  const row = inputs.input_ids[0];
  if (!row) throw new TfvlmError('generative ranking: the processor returned no input row for the prompt');
  return row;
}

/** Prompt tensors of one prompt's ids (image tokens merged by the model's embed). */
function embedPrompt(vlm: Vlm, inputs: Pick<ProcessedInputs, 'pixel_values' | 'pixelShape' | 'pixel_attention_mask'>, ids: number[]): tf.Tensor {
  return tf.tidy(() => {
    const shape = inputs.pixelShape;
    return vlm.model.embed({
      input_ids: tf.tensor2d(ids, [1, ids.length], 'int32'),
      ...(inputs.pixel_values && shape
        ? {
            pixel_values: tf.tensor(inputs.pixel_values, shape, 'float32'),
            ...(inputs.pixel_attention_mask
              // [B, tiles, C, H, W] → [B, tiles, H, W]
              ? { pixel_attention_mask: tf.tensor(inputs.pixel_attention_mask, shape.filter((_, i) => i !== 2), 'bool') }
              : {}),
          }
        : {}),
    });
  });
}

/** log p(targets[b][t] | ...) from logits [B, T, V] → host [B][T] (targets already in range). */
function gatherLogProbs(logits: tf.Tensor, targets: number[][]): Float32Array {
  return tf.tidy(() => {
    const [B, T, V] = logits.shape as [number, number, number];
    const lse = tf.logSumExp(logits, -1); // [B, T]
    const idx = new Int32Array(B * T);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) idx[b * T + t] = (b * T + t) * V + (targets[b]![t] ?? 0);
    const picked = tf.gather(tf.reshape(logits, [-1]), tf.tensor1d(idx, 'int32'));
    return tf.sub(picked, tf.reshape(lse, [-1])).dataSync() as Float32Array;
  });
}

export class GenerativeRanker {
  readonly prompt: string;
  readonly batchSize: number;
  private readonly decoder: LlamaDecoder;
  private separator: string | undefined;

  constructor(readonly vlm: Vlm, opts: GenerativeRankOptions = {}) {
    this.prompt = opts.prompt ?? DEFAULT_CAPTION_PROMPT;
    this.batchSize = Math.max(1, opts.batchSize ?? 16);
    this.decoder = decoderOf(vlm);
  }

  /** What the chat template puts between the generation prompt and the assistant's text (e.g. " " after "Assistant:"). */
  answerSeparator(): string {
    if (this.separator !== undefined) return this.separator;
    const user = userTurn([], this.prompt).messages;
    const processor = this.vlm.processor;
    const open = processor.renderMessages(parseMessages(user), { addGenerationPrompt: true });
    const full = processor.renderMessages(parseMessages([...user, { role: 'assistant', content: [{ type: 'text', text: MARK }] }]),
      { addGenerationPrompt: false });
    const at = full.indexOf(MARK);
    this.separator = full.startsWith(open) && at >= open.length ? full.slice(open.length, at) : ' ';
    return this.separator;
  }

  /** The answer tokens scored for each text: the tokenizer's ids of separator + text, no special tokens added. */
  answerIds(texts: string[]): number[][] {
    const sep = this.answerSeparator();
    return texts.map((t, i) => {
      if (typeof t !== 'string' || t.trim() === '') throw new TfvlmError(`texts[${i}] must be a non-empty string`);
      const ids = this.vlm.tokenizer.encode(sep + t, { addSpecialTokens: false });
      if (ids.length === 0) throw new TfvlmError(`texts[${i}] has no tokens`);
      return ids;
    });
  }

  /** The processed user turn (image + prompt + assistant opener) for one image. */
  async prefixInputs(image: ImageSource): Promise<ProcessedInputs> {
    return this.vlm.prepare(userTurn([image], this.prompt));
  }

  /** Σ and mean log p of each answer after one image, the prefix encoded once and the answers batched. */
  async scoreAnswers(image: ImageSource, answers: number[][]): Promise<{ sum: number[]; mean: number[] }> {
    const inputs = await this.prefixInputs(image);
    const prefixIds = promptIds(inputs);
    const P = prefixIds.length;
    const longest = Math.max(...answers.map((a) => a.length));
    if (P + longest > this.vlm.model.maxPositions) {
      throw new TfvlmError(`prompt (${P} tokens) + answer (${longest}) exceed the model's ${this.vlm.model.maxPositions} positions`);
    }
    // The prefix is encoded once (batch 1), then every chunk of answers extends its own copy of it.
    const prefix = Array.from({ length: this.decoder.config.num_hidden_layers }, () => new ConcatKVCache());
    const sum = new Array<number>(answers.length).fill(0);
    try {
      // The prefix's last logits predict every answer's first token.
      const embeds = embedPrompt(this.vlm, inputs, prefixIds);
      let firstLogProbs: Float32Array;
      try {
        const last = this.decoder.forward({ inputs_embeds: embeds }, { cache: prefix, lastOnly: true }); // [1, 1, V]
        firstLogProbs = tf.tidy(() => tf.logSoftmax(tf.reshape(last, [-1])).dataSync() as Float32Array);
        last.dispose();
      } finally {
        embeds.dispose();
      }
      // Every answer has at least one token (answerIds).
      answers.forEach((a, j) => { sum[j]! += firstLogProbs[a[0]!]!; });
      // Tokens 1.. of each answer, fed its tokens 0..n−2 after the tiled prefix; right padding needs no
      // mask under a causal decoder (real positions never see later pads).
      for (let start = 0; start < answers.length; start += this.batchSize) {
        const chunk = answers.slice(start, start + this.batchSize).map((a, k) => ({ a, j: start + k })).filter((x) => x.a.length > 1);
        if (chunk.length === 0) continue;
        const L = Math.max(...chunk.map((x) => x.a.length - 1));
        const pad = (row: number[]) => [...row, ...new Array(L - row.length).fill(row[row.length - 1])];
        const inputsIds = chunk.map((x) => pad(x.a.slice(0, -1)));
        const targets = chunk.map((x) => x.a.slice(1));
        const caches = prefix.map((c) => c.tile(chunk.length));
        try {
          const logProbs = tf.tidy(() => {
            const e = this.decoder.embed(tf.tensor2d(inputsIds.flat(), [chunk.length, L], 'int32'));
            const logits = this.decoder.forward({ inputs_embeds: e }, { cache: caches }); // [n, L, V]
            return gatherLogProbs(logits, targets);
          });
          chunk.forEach((x, b) => {
            for (let t = 0; t < x.a.length - 1; t++) sum[x.j]! += logProbs[b * L + t]!;
          });
        } finally {
          disposeKVCaches(caches);
        }
      }
    } finally {
      disposeKVCaches(prefix);
    }
    return { sum, mean: answers.map((a, j) => sum[j]! / a.length) };
  }

  /** The full score matrix [n_images][n_texts]. */
  async score(images: ImageSource[], texts: string[]): Promise<GenerativeScores> {
    if (images.length === 0) throw new TfvlmError('give at least one image');
    if (texts.length === 0) throw new TfvlmError('give at least one text');
    const answerIds = this.answerIds(texts);
    const logProb: number[][] = [];
    const meanLogProb: number[][] = [];
    for (const image of images) {
      const { sum, mean } = await this.scoreAnswers(image, answerIds);
      logProb.push(sum);
      meanLogProb.push(mean);
    }
    return { logProb, meanLogProb, answerIds };
  }

  /** Candidate images for one text: log p(text | image) per image (a column of `score`). */
  async scoreImages(images: ImageSource[], text: string): Promise<number[]> {
    return (await this.score(images, [text])).logProb.map((row) => row[0]!); // one text: one column
  }

  /**
   * The same score by the plain route: one full forward (no cache) over prompt + answer per pair,
   * log-softmax gathered at the answer positions. The reference for tests and the naive bench row.
   */
  async scorePairDirect(image: ImageSource, text: string): Promise<number> {
    const inputs = await this.prefixInputs(image);
    const answer = this.answerIds([text])[0]!; // one text: one row
    const prefixIds = promptIds(inputs);
    const P = prefixIds.length;
    const ids = [...prefixIds, ...answer];
    return tf.tidy(() => {
      const embeds = embedPrompt(this.vlm, inputs, ids);
      const logits = this.decoder.forward({ inputs_embeds: embeds }); // [1, P + A, V]
      const logp = tf.logSoftmax(tf.slice(logits, [0, P - 1, 0], [1, answer.length, -1]));
      const values = logp.dataSync() as Float32Array;
      const V = logits.shape[2] as number;
      return answer.reduce((s, id, k) => s + values[k * V + id]!, 0);
    });
  }
}
