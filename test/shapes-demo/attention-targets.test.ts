// The shapes demo's attention targets (examples/shapes-demo/attention-targets.ts): each answer
// about a shape points at the image tokens of that shape's cell.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { initBackend } from '../../src/backend/index.ts';
import { readConversations } from '../../src/train/jsonl.ts';
import { buildExamples } from '../../src/train/examples.ts';
import { VlmProcessor } from '../../src/processing/processor.ts';
import { DATA_FILE, SCENES_FILE, writeShapesDataset } from '../../examples/shapes-demo/dataset.ts';
import { imageTokenCells } from '../../examples/shapes-demo/scene.ts';
import { QUESTION_TYPES, candidateQuestions } from '../../examples/shapes-demo/text.ts';
import { attachShapesAttentionTargets, readScenes } from '../../examples/shapes-demo/attention-targets.ts';

const DEMO = fileURLToPath(new URL('../../weights/tfvlm-demo', import.meta.url));
let root: string;

before(async () => {
  await initBackend();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-attention-targets-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

describe('shapes attention targets', () => {
  it('point each answer about a shape at the image tokens of that shape\'s cell', async () => {
    // The demo model's processor: 96 px images → 3×3 image tokens, one per cell.
    const processor = await VlmProcessor.load(DEMO);
    const dir = path.join(root, 'shapes96');
    await writeShapesDataset(dir, { n: 4, seed: 5, questionsPerImage: 8, questionsPerConversation: 4 });
    const file = path.join(dir, DATA_FILE);
    const conversations = await readConversations(file);
    const scenes = readScenes(path.join(dir, SCENES_FILE));
    const examples = await buildExamples(processor, conversations, file);
    const made = attachShapesAttentionTargets(examples, conversations, scenes, processor.imageTokenId);
    assert.ok(made >= 16, `${made} targets`);
    let checked = 0;
    examples.forEach((e, i) => {
      const conv = conversations[i];
      assert.ok(conv, `conversation ${i}`);
      if (conv.kind === 'caption') return assert.deepEqual(e.attentionTargets, []);
      const [first] = conv.messages;
      assert.ok(first, `conversation ${i}: a first message`);
      const image = first.content.find((p) => p.type === 'image');
      const scene = scenes.get(image?.type === 'image' ? image.image : '')!;
      const imagePositions = [...e.input_ids].flatMap((id, t) => (id === processor.imageTokenId ? [t] : []));
      assert.equal(imagePositions.length, 9);
      const cells = imageTokenCells(imagePositions.length);
      const questions = QUESTION_TYPES.flatMap((t) => candidateQuestions(scene, t));
      const answerStarts = [...e.assistant_mask].flatMap((m, t) => (t > 0 && m && !e.assistant_mask[t - 1] ? [t - 1] : []));
      const expected = conv.messages.flatMap((m, k) => {
        if (m.role !== 'assistant') return [];
        const user = conv.messages[k - 1];
        assert.ok(user, `conversation ${i}: a message before answer ${k}`);
        const prompt = user.content.find((p) => p.type === 'text');
        const q = questions.find((x) => prompt?.type === 'text' && x.question === prompt.text)!;
        const turn = conv.messages.slice(0, k).filter((x) => x.role === 'assistant').length;
        const keys = imagePositions.filter((_, j) => q.cells.includes(cells[j]!));
        return keys.length ? [{ query: answerStarts[turn], keys }] : [];
      });
      assert.deepEqual(e.attentionTargets, expected);
      for (const t of e.attentionTargets!) assert.ok(t.keys.every((k) => k < t.query));
      checked += expected.length;
    });
    assert.equal(checked, made);
  });

  it('name the cells of the shape each question is about', () => {
    const scene = {
      image: 'x.png', width: 96, height: 96, shapes: [
        { shape: 'circle', color: 'red', cell: 0, position: 'top left', x: 0, y: 0, size: 20 },
        { shape: 'square', color: 'blue', cell: 4, position: 'center', x: 40, y: 40, size: 20 },
      ],
    } as const;
    const all = QUESTION_TYPES.flatMap((t) => candidateQuestions(structuredClone(scene) as never, t));
    const cellsOf = (q: string) => all.find((x) => x.question === q)!.cells;
    assert.deepEqual(cellsOf('Where is the blue square?'), [4]);
    assert.deepEqual(cellsOf('What color is the circle?'), [0]);
    assert.deepEqual(cellsOf('What shape is in the center?'), [4]);
    assert.deepEqual(cellsOf('Is there a red circle?'), [0]);
    assert.deepEqual(cellsOf('Is there a red square?'), []);
    assert.deepEqual(cellsOf('How many shapes are there?'), []);
  });
});
