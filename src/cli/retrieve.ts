// `tfvlm retrieve --images A B C --texts "…" "…" [--top K] [--json] [--model DIR]`: the score of every
// (image, text) pair, printed as rankings both ways. The method follows the checkpoint: CLIP / SigLIP
// score by their embeddings; SmolVLM / LLaVA by the log-likelihood of each text as the answer.
import { withProgressAsync } from '../util/progress.ts';
import { progressPrinter } from './progress-printer.ts';
import { jsonLine } from './json-output.ts';
import fs from 'node:fs';
import { initBackend } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { rankOrder, Retriever, type RankResult } from '../tasks/retrieve.ts';
import { optionalNumber, type Command, type ParsedArgs } from './command.ts';
import { dtypeOptions } from './generation-flags.ts';
import { MODEL_OPTION_HELP, modelSpec } from './model-option.ts';

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []);

/**
 * `--images A B C --texts x y`: node's parseArgs keeps only the first word after each flag and
 * leaves the rest as positionals; those are sorted back by kind (existing files are images, the
 * rest texts), each kind in its given order.
 */
export function imagesAndTexts(args: ParsedArgs): { images: string[]; texts: string[] } {
  const images = list(args.values.images);
  const texts = list(args.values.texts);
  for (const p of args.positionals) {
    if (images.length > 0 && fs.existsSync(p) && fs.statSync(p).isFile()) images.push(p);
    else texts.push(p);
  }
  return { images, texts };
}

const quote = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}…` : s);

/** The human-readable report: per image the texts best first, then per text the images best first. */
export function formatRanking(r: RankResult, images: string[], texts: string[], top: number): string {
  const lines: string[] = [];
  const second = r.secondaryKind === 'prob' ? 'prob' : 'mean/token';
  const fmt = (x: number) => x.toFixed(4).padStart(10);
  lines.push(`method: ${r.method} · score: ${r.scoreKind === 'logit' ? 'logit (scaled cosine)' : 'log p(text | image) summed over its tokens'}`);
  // r.scores and r.secondary are [images.length][texts.length].
  images.forEach((img, i) => {
    const scores = r.scores[i]!;
    const secondary = r.secondary[i]!;
    lines.push('', `image ${i + 1}: ${img}`, `  rank  ${'score'.padStart(10)}  ${second.padStart(10)}  text`);
    rankOrder(scores).slice(0, top).forEach((j, k) => {
      lines.push(`  ${String(k + 1).padStart(4)}  ${fmt(scores[j]!)}  ${fmt(secondary[j]!)}  ${quote(texts[j]!)}`);
    });
  });
  texts.forEach((t, j) => {
    const column = r.scores.map((row) => row[j]!);
    lines.push('', `text ${j + 1}: ${quote(t)}`, `  rank  ${'score'.padStart(10)}  image`);
    rankOrder(column).slice(0, top).forEach((i, k) => lines.push(`  ${String(k + 1).padStart(4)}  ${fmt(column[i]!)}  ${images[i]}`));
  });
  return lines.join('\n');
}

export const retrieveCommand: Command = {
  name: 'retrieve',
  summary: 'rank texts for images and images for texts (CLIP/SigLIP embeddings, or VLM log-likelihood)',
  usage: `Usage: tfvlm retrieve --images A.png B.png … --texts "…" "…" [--top K] [--json] [--prompt TEXT] [--model DIR|ID]

Scores every (image, text) pair and prints, for each image, the texts best first and, for each text,
the images best first. The method follows the checkpoint:
  CLIPModel / SiglipModel   logits_per_image (scaled cosine of the embeddings; SigLIP adds logit_bias),
                            with softmax over the texts (CLIP) or sigmoid (SigLIP) as "prob"
  SmolVLM / LLaVA           Σ log p(text | image, prompt) of the text as the assistant's answer
                            (teacher forcing; the image is encoded once per image, the texts batched),
                            with the mean per token alongside
  ${MODEL_OPTION_HELP}
  --images FILE…      images (also --images A --images B)
  --texts TEXT…       candidate texts
  --top K             show the best K of each ranking (default all)
  --prompt TEXT       generative models: the instruction asked with each image (default "Describe this image.")
  --batch N           generative models: candidates per forward (default 16)
  --dtype auto|q8|q4  generative models: quantize while loading, as tfvlm generate (--group-size 32|64|128)
  --convert-rgb       dual encoders: convert images to RGB whatever the preprocessor config says (RGBA or gray into a SigLIP processor without do_convert_rgb)
  --json              print {"model","method","score_kind","images","texts","scores","secondary","secondary_kind","ms"}
  -q, --quiet         no progress on stderr (loading past 1 GB, vision passes and prefill past 3 s show it)`,
  options: {
    model: { type: 'string' }, images: { type: 'string', multiple: true }, texts: { type: 'string', multiple: true },
    top: { type: 'string' }, json: { type: 'boolean' }, prompt: { type: 'string' }, batch: { type: 'string' },
    dtype: { type: 'string' }, 'group-size': { type: 'string' }, 'convert-rgb': { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' },
  },
  allowPositionals: true,
  run: (args) => runRetrieve(args),
};

/** The command's work, writing its report through `out` and its timing line through `err`. */
export async function runRetrieve(args: ParsedArgs, out = (s: string) => { process.stdout.write(s); },
  err = (s: string) => { process.stderr.write(s); }): Promise<number> {
  const { images, texts } = imagesAndTexts(args);
  if (images.length === 0) throw new TfvlmError('give at least one image with --images');
  if (texts.length === 0) throw new TfvlmError('give at least one text with --texts');
  for (const img of images) if (!fs.existsSync(img)) throw new TfvlmError(`image ${img}: no such file`);
  const top = optionalNumber(args, 'top', 'retrieve') ?? Math.max(images.length, texts.length);
  if (!Number.isInteger(top) || top < 1) throw new TfvlmError(`--top must be a positive integer, got ${top}`);
  const batch = optionalNumber(args, 'batch', 'retrieve');
  if (batch !== undefined && (!Number.isInteger(batch) || batch < 1)) throw new TfvlmError(`--batch must be a positive integer, got ${batch}`);
  await initBackend(undefined, { syncReads: 'retrieval' });
  const t0 = performance.now();
  const progress = args.values.quiet ? undefined : progressPrinter();
  const retriever = await withProgressAsync(progress, () => Retriever.load(modelSpec(args), {
    ...dtypeOptions(args, 'retrieve'),
    ...(typeof args.values.prompt === 'string' ? { prompt: args.values.prompt } : {}),
    ...(batch ? { batchSize: batch } : {}),
    ...(args.values['convert-rgb'] ? { convertRgb: true } : {}),
  }));
  const loadMs = performance.now() - t0;
  try {
    const r = await withProgressAsync(progress, () => retriever.rank(images, texts));
    if (args.values.json) {
      out(jsonLine({
        model: retriever.dir, method: r.method, score_kind: r.scoreKind, images, texts, scores: r.scores,
        secondary: r.secondary, secondary_kind: r.secondaryKind, ms: Math.round(r.ms),
      }));
    } else {
      out(`${formatRanking(r, images, texts, top)}\n`);
    }
    err(`${r.method}: ${images.length} image(s) × ${texts.length} text(s) scored in ${r.ms.toFixed(0)} ms (load ${loadMs.toFixed(0)} ms)\n`);
    return 0;
  } finally {
    retriever.dispose();
  }
}
