// README.md of the shipped demo model: what it was trained on, how, how long, and how well it does.
import fs from 'node:fs';
import path from 'node:path';
import { formatScore, shapeCountsOf, type ShapesEvalResult } from './scoring.ts';
import { formatDuration, type LoopResult } from '../../src/train/loop.ts';
import type { TrainConfig } from '../../src/train/trainer.ts';
import { writeFileAtomic } from '../../src/io/atomic-write.ts';

export interface ModelCardFacts {
  parameters: number;
  /** Training conversations (captions + questions). */
  conversations: number;
  recipe: {
    trainImages: number; trainSeed: number; questionsPerImage: number; questionsPerConversation: number;
    evalSeed: number; initStd: number; positionEmbeddingStd: number;
  };
  config: TrainConfig;
  result: LoopResult;
  evaluation: ShapesEvalResult & { seconds: number };
  backend: string;
  totalSeconds: number;
  bytes: number;
}

export function writeDemoModelCard(dir: string, f: ModelCardFacts): void {
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const v = cfg.vision_config;
  const t = cfg.text_config;
  const c = f.config;
  const tasks = Object.entries(f.evaluation.byTask).map(([k, s]) => `| ${k} | ${formatScore(s)} |`).join('\n');
  const byShapes = Object.entries(f.evaluation.byTaskAndShapes);
  const counts = shapeCountsOf(f.evaluation);
  const shapesTable = counts.length === 0 ? '' : `
By number of shapes in the image (with one shape, most questions can be answered without finding
the shape the question names):

| | ${counts.map((n) => `${n} shape${n === 1 ? '' : 's'}`).join(' | ')} |
|---|${counts.map(() => '---|').join('')}
${byShapes.map(([task, per]) => `| ${task} | ${counts.map((n) => (per[n] ? `${per[n].exact}/${per[n].total}` : '–')).join(' | ')} |`).join('\n')}
`;
  const pre = JSON.parse(fs.readFileSync(path.join(dir, 'preprocessor_config.json'), 'utf8'));
  const tokensPerView = (v.image_size / v.patch_size) ** 2 / cfg.scale_factor ** 2;
  const grid = Math.ceil(pre.size.longest_edge / v.image_size);
  const layout = pre.do_image_splitting
    ? `image splitting on: a ${pre.size.longest_edge}×${pre.size.longest_edge} image is cut into ${grid}×${grid} tiles of ${v.image_size}×${v.image_size}, one per cell of the grid, ` +
      `each announced by its \`<row_r_col_c>\` token, plus a ${v.image_size}×${v.image_size} global view; ${tokensPerView} image token(s) per view`
    : `image splitting off, one ${v.image_size}×${v.image_size} global image → ${tokensPerView} image tokens, one per cell of the 3×3 grid`;
  const text = `---
license: apache-2.0
library_name: transformers
pipeline_tag: image-text-to-text
tags: [idefics3, smolvlm, tfvlm, synthetic]
---

# tfvlm-demo

A ${(f.parameters / 1e6).toFixed(2)} M-parameter Idefics3 (SmolVLM architecture) trained from random
initialisation by tfvlm itself (\`npm run train:demo\`, examples/shapes-demo/train.ts) on the synthetic
*shapes* dataset: 96×96 pictures of 1–3 coloured shapes (circle, square, triangle; red, green, blue,
yellow) in a 3×3 grid. It describes such images and answers questions about them — nothing else.
It is the default model of \`tfvlm describe\` so a fresh install works without a download.

It is a standard Hugging Face checkpoint: \`Idefics3ForConditionalGeneration\` with
\`Idefics3Processor\` (${layout}) and a
word-level tokenizer (${t.vocab_size} tokens) with SmolVLM's chat template.

| part | size |
|---|---|
| vision | ${v.num_hidden_layers} layers, hidden ${v.hidden_size}, ${v.num_attention_heads} heads, patch ${v.patch_size}, ${pre.do_image_splitting ? 'tile' : 'image'} ${v.image_size} |
| connector | pixel shuffle ×${cfg.scale_factor}, linear ${v.hidden_size * cfg.scale_factor ** 2} → ${t.hidden_size} |
| text (Llama) | ${t.num_hidden_layers} layers, hidden ${t.hidden_size}, ${t.num_attention_heads} heads / ${t.num_key_value_heads} KV heads, MLP ${t.intermediate_size}${cfg.tie_word_embeddings ? ', lm_head tied to embed_tokens' : ''} |
| weights | ${(f.bytes / 1e6).toFixed(1)} MB (float32 safetensors) |

## Data

\`npm run demo:data -- --n ${f.recipe.trainImages} --seed ${f.recipe.trainSeed} --questions-per-image ${f.recipe.questionsPerImage} --questions-per-conversation ${f.recipe.questionsPerConversation}\`:
${f.recipe.trainImages} images (96×96), each with its caption ("Describe the image." → "a red circle at the top left, a
blue square in the center.") and up to ${f.recipe.questionsPerImage} questions (count, colour, shape, exists, where) asked
${f.recipe.questionsPerConversation > 1 ? `up to ${f.recipe.questionsPerConversation} per conversation as consecutive turns` : 'one per conversation'}, ${f.conversations} conversations.
Loss on the assistant tokens only, ${c.lossWeighting === 'turn' ? 'every assistant turn weighing the same (a two-token answer as much as a caption)' : 'averaged over them'}.

## Recipe

Random init: N(0, ${f.recipe.initStd}) for every weight (norm weights 1 + N(0, ${f.recipe.initStd})) except the vision position
embeddings, N(0, ${f.recipe.positionEmbeddingStd}), so that ${pre.do_image_splitting ? 'the vision tower sees where each patch lies from the start' : 'each image token says which grid cell it shows'}.
${c.freeze ? `All weights trained except those matching \`${c.freeze}\`, kept at their random initialisation` : 'All weights trained (\`--trainable all\`)'}, AdamW (β 0.9/0.999, weight decay ${c.weightDecay}), peak lr ${c.lr} with
${Math.round(c.warmupRatio * 100)}% linear warm-up then cosine decay, batch ${c.batchSize} × ${c.gradAccum}, gradient clipping at ${c.maxGradNorm},
${f.result.steps} steps, seed ${c.seed}.
${c.attentionSupervision ? `
Supervised attention (\`attentionSupervision\`): head${c.attentionSupervision.heads.length > 1 ? 's' : ''} ${c.attentionSupervision.heads.join(', ')} of text layer ${c.attentionSupervision.layer} is taught,
from the position that predicts an answer's first word, to look at the image token of the shape the
question is about ("Where is the red circle?" → the red circle's cell; counts and absent shapes have
no target): ${c.attentionSupervision.weight} × −log(its attention on that token), averaged over the answers with a target,
is added to the language-model loss. The model is an ordinary checkpoint; nothing of this is needed
to run it. The training loss below is that sum.
` : ''}
Trained on the tfjs ${f.backend} on 2 shared CPU cores:
${formatDuration(f.result.seconds)} of training (${Math.round(f.result.tokensPerSecond)} tokens/s), final training loss ${f.result.finalLoss.toFixed(4)};
the whole script (data, training, evaluation) took ${formatDuration(f.totalSeconds)}.

## Accuracy

\`npm run demo:eval -- --model weights/tfvlm-demo --seed ${f.recipe.evalSeed}\` (fresh images and questions from a seed
not used in training, greedy decoding, exact match):

| | exact |
|---|---|
| captions (${f.evaluation.captions.total} images) | ${formatScore(f.evaluation.captions)} |
| questions (${f.evaluation.questions.total}) | ${formatScore(f.evaluation.questions)} |
${tasks}
${shapesTable}
Targets: ≥ 90% of captions exactly right — ${f.evaluation.captions.accuracy >= 0.9 ? 'met' : 'not met'}; ≥ 95% of questions — ${f.evaluation.questions.accuracy >= 0.95 ? 'met' : 'not met by this checkpoint (the recipe is being improved)'}.

## Limitations

Knows ${t.vocab_size} words and one kind of picture. Any other image gets a confident description of
coloured shapes.
`;
  writeFileAtomic(path.join(dir, 'README.md'), text);
}
