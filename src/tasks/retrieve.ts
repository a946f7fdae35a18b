// Cross-modal retrieval: `rank(images, texts)` → the full score matrix [n_images][n_texts], by the
// method the checkpoint supports: a dual encoder (CLIP / SigLIP: scaled cosine logits) or a generative
// VLM (SmolVLM / LLaVA: log-likelihood of the text as the answer about the image).
import type { PreprocessorOverrides } from '../processing/preprocessor-config.ts';
import { TfvlmError } from '../errors.ts';
import { Vlm, type VlmLoadOptions } from '../engine.ts';
import { resolveModel } from '../io/hub/index.ts';
import type { ImageSource } from '../io/image.ts';
import { DualEncoder, isDualEncoderFolder } from './dual-encoder.ts';
import { GenerativeRanker, type GenerativeRankOptions } from './generative-rank.ts';

export type RetrievalMethod = 'dual-encoder' | 'generative';

export interface RankResult {
  method: RetrievalMethod;
  /** What `scores` hold: 'logit' (dual encoder) or 'log_prob' (Σ log p of the text's tokens). */
  scoreKind: 'logit' | 'log_prob';
  /** [n_images][n_texts]; higher = better match. */
  scores: number[][];
  /** Dual encoder: softmax over texts (CLIP) or sigmoid (SigLIP). Generative: mean log p per token. */
  secondary: number[][];
  secondaryKind: 'prob' | 'mean_log_prob';
  /** Wall time of the scoring (not the load), ms. */
  ms: number;
}

/** Indices of row sorted by score, best first. */
export function rankOrder(row: number[]): number[] {
  return row.map((_, i) => i).sort((a, b) => row[b]! - row[a]! || a - b);
}

export class Retriever {
  private constructor(readonly dir: string, readonly dual?: DualEncoder, readonly generative?: GenerativeRanker) {}

  /** Loads the model folder (or hub id) and picks the method from its config.json. */
  static async load(
    spec: string, opts: GenerativeRankOptions & Pick<VlmLoadOptions, 'dtype' | 'groupSize'> & PreprocessorOverrides = {},
  ): Promise<Retriever> {
    const dir = await resolveModel(spec);
    const { dtype, groupSize, convertRgb, ...rank } = opts;
    if (isDualEncoderFolder(dir)) {
      if (dtype !== undefined && dtype !== 'auto') {
        throw new TfvlmError(`${dir} is a dual encoder (CLIP/SigLIP), which runs in float32; dtype ${dtype} applies to generative models`);
      }
      return new Retriever(dir, await DualEncoder.load(dir, { convertRgb }));
    }
    const vlm = await Vlm.load(dir, { dtype, groupSize });
    return new Retriever(dir, undefined, new GenerativeRanker(vlm, rank));
  }

  get method(): RetrievalMethod {
    return this.dual ? 'dual-encoder' : 'generative';
  }

  async rank(images: ImageSource[], texts: string[]): Promise<RankResult> {
    if (images.length === 0 || texts.length === 0) throw new TfvlmError('retrieval needs at least one image and one text');
    const t0 = performance.now();
    if (this.dual) {
      const s = await this.dual.score(images, texts);
      return { method: 'dual-encoder', scoreKind: 'logit', scores: s.logits, secondary: s.probs, secondaryKind: 'prob', ms: performance.now() - t0 };
    }
    const g = await (this.generative as GenerativeRanker).score(images, texts);
    return {
      method: 'generative', scoreKind: 'log_prob', scores: g.logProb, secondary: g.meanLogProb, secondaryKind: 'mean_log_prob',
      ms: performance.now() - t0,
    };
  }

  dispose(): void {
    this.dual?.dispose();
    this.generative?.vlm.dispose();
  }
}

/** One-shot: load `model`, rank, dispose. */
export async function rank(model: string, images: ImageSource[], texts: string[], opts: GenerativeRankOptions = {}): Promise<RankResult> {
  const r = await Retriever.load(model, opts);
  try {
    return await r.rank(images, texts);
  } finally {
    r.dispose();
  }
}
