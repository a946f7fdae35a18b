// Attention targets for the shapes dataset (TrainConfig.attentionSupervision): the position that
// predicts an answer's first token should attend to the image tokens of the shape its question is
// about ("Where is the red circle?" → the red circle's cell). Questions about no shape (counts,
// absent shapes) and captions get none.
import fs from 'node:fs';
import { TfvlmError } from '../../src/errors.ts';
import type { Conversation } from '../../src/train/jsonl.ts';
import { parseScenes } from './dataset.ts';
import { imageTokenCells, type Scene } from './scene.ts';
import { QUESTION_TYPES, candidateQuestions } from './text.ts';
import type { AttentionTarget } from '../../src/train/attention-supervision.ts';
import type { TrainExample } from '../../src/train/examples.ts';

/** scenes.jsonl of a shapes dataset → scene by image path (as the conversations name it). */
export function readScenes(scenesFile: string): Map<string, Scene> {
  return new Map(parseScenes(fs.readFileSync(scenesFile, 'utf8'), scenesFile).map((s) => [s.image, s]));
}

/** Positions t whose next token starts an assistant turn, in turn order. */
function answerStarts(example: TrainExample): number[] {
  const starts: number[] = [];
  for (let t = 0; t + 1 < example.input_ids.length; t++) {
    if (example.assistant_mask[t + 1] && !example.assistant_mask[t]) starts.push(t);
  }
  return starts;
}

/** The targets of one example made from a shapes conversation about `scene` (one image, no tiles). */
export function shapesAttentionTargets(example: TrainExample, conv: Conversation, scene: Scene, imageTokenId: number): AttentionTarget[] {
  const imagePositions: number[] = [];
  example.input_ids.forEach((id, t) => {
    if (id === imageTokenId) imagePositions.push(t);
  });
  if (imagePositions.length === 0) return [];
  const tokenCell = imageTokenCells(imagePositions.length);
  const byText = new Map(QUESTION_TYPES.flatMap((type) => candidateQuestions(scene, type)).map((q) => [q.question, q]));
  const starts = answerStarts(example);
  const targets: AttentionTarget[] = [];
  let turn = 0;
  conv.messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const query = starts[turn++];
    const prompt = conv.messages[i - 1]?.content.find((p) => p.type === 'text');
    const question = prompt?.type === 'text' ? byText.get(prompt.text) : undefined;
    if (query === undefined || !question || question.cells.length === 0) return;
    const keys = imagePositions.filter((_, j) => question.cells.includes(tokenCell[j]!)); // one cell per image position
    if (keys.length > 0) targets.push({ query, keys });
  });
  return targets;
}

/**
 * Sets attentionTargets on each example from its conversation (same order) and the scene of the
 * conversation's image; returns how many targets were made.
 */
export function attachShapesAttentionTargets(
  examples: TrainExample[], conversations: readonly Conversation[], scenes: ReadonlyMap<string, Scene>, imageTokenId: number,
): number {
  if (examples.length !== conversations.length) {
    throw new TfvlmError(`attention targets: ${examples.length} examples for ${conversations.length} conversations`);
  }
  let made = 0;
  conversations.forEach((conv, i) => {
    const example = examples[i]!; // as many examples as conversations (checked above)
    const [image, ...moreImages] = conv.messages.flatMap((m) => m.content.flatMap((p) => (p.type === 'image' ? [p.image] : [])));
    if (image === undefined || moreImages.length > 0) return;
    const scene = scenes.get(image);
    if (!scene) throw new TfvlmError(`attention targets: conversation ${i + 1} shows ${image}, which has no scene`);
    const targets = shapesAttentionTargets(example, conv, scene, imageTokenId);
    example.attentionTargets = targets;
    made += targets.length;
  });
  return made;
}
