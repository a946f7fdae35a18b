import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { shapesExamples } from '../../examples/shapes-demo/dataset.ts';
import type { Conversation } from '../../src/train/jsonl.ts';
import {
  evalItem, evalItems, evaluateShapes, formatShapesEval, scoreAnswers, selectEvalItems, splitByKind, withShapeCounts,
} from '../../examples/shapes-demo/scoring.ts';
import { TfvlmError } from '../../src/errors.ts';

const conversations = (): Conversation[] =>
  [...shapesExamples({ n: 10, seed: 4, questionsPerImage: 2 })].flatMap((ex) => ex.conversations);

describe('shapes eval', () => {
  it('scoreAnswers: exact match after trimming whitespace only', () => {
    assert.deepEqual(scoreAnswers([]), { exact: 0, total: 0, accuracy: 0 });
    const s = scoreAnswers([
      { expected: 'red', predicted: 'red' },
      { expected: 'top left', predicted: '  top left\n' },
      { expected: 'red', predicted: 'Red' },
      { expected: 'a red circle at the top.', predicted: 'a red circle at the top' },
    ]);
    assert.deepEqual(s, { exact: 2, total: 4, accuracy: 0.5 });
  });

  it('splits captions from questions by kind, falling back to the prompt', () => {
    const convs = conversations();
    const file = '/data/eval/data.jsonl';
    const { captions, questions } = splitByKind(evalItems(convs, file));
    assert.equal(captions.length, 10);
    assert.equal(questions.length, 20);
    assert.ok(captions.every((c) => c.prompt === 'Describe the image.' && c.task === 'caption' && c.expected.endsWith('.')));
    assert.ok(questions.every((q) => q.prompt.endsWith('?') && q.task !== 'caption'));
    assert.equal(captions[0]!.image, path.resolve('/data/eval/images/000000.png'));

    const some = selectEvalItems(evalItems(convs, file), { captions: 3, questions: 5 });
    assert.deepEqual(some.map((it) => it.kind).sort(), [...Array(3).fill('caption'), ...Array(5).fill('qa')]);
    assert.equal(selectEvalItems(evalItems(convs, file), {}).length, 30);

    const [first, second] = convs;
    assert.ok(first && second, 'two conversations');
    const bare = { messages: first.messages };
    assert.equal(evalItem(bare, file).kind, 'caption');
    assert.equal(evalItem({ messages: second.messages }, file).kind, 'qa');
    assert.throws(() => evalItem({ messages: first.messages.slice(0, 1) }, file), TfvlmError);
    // A multi-turn conversation would otherwise be scored on its first answer only.
    const turns = [...shapesExamples({ n: 3, seed: 4, questionsPerImage: 4, questionsPerConversation: 2 })][0]?.conversations[1];
    assert.ok(turns, 'a second conversation');
    assert.equal(turns.messages.length, 4);
    assert.throws(() => evalItem(turns, file, 'eval.jsonl: conversation 2'), /eval\.jsonl: conversation 2: has several user turns/);
  });

  it('evaluateShapes scores a predictor per kind and task and lists the mistakes', async () => {
    const items = evalItems(conversations(), '/d/data.jsonl');
    const r = await evaluateShapes(items, async (it) => (it.task === 'caption' || it.task === 'count' ? it.expected : 'wrong'));
    assert.deepEqual(r.captions, { exact: 10, total: 10, accuracy: 1 });
    assert.equal(r.questions.total, 20);
    assert.equal(r.questions.exact, r.byTask.count?.total ?? 0);
    assert.equal(r.mistakes.length, 20 - r.questions.exact);
    assert.match(formatShapesEval(r), /^captions\s+10\/10 = 100\.0% exact\nquestions\s+\d+\/20/);
  });

  it('splits the scores by number of shapes in the image, read from scenes.jsonl', async () => {
    const examples = [...shapesExamples({ n: 12, seed: 5, questionsPerImage: 2 })];
    const file = '/d/data.jsonl';
    const scenes = examples.map((ex) => JSON.stringify(ex.scene)).join('\n') + '\n';
    const items = withShapeCounts(evalItems(examples.flatMap((ex) => ex.conversations), file), scenes, '/d/scenes.jsonl');
    const shapesOf = new Map(examples.map((ex) => [path.resolve('/d', ex.scene.image), ex.scene.shapes.length]));
    assert.ok(items.every((it) => it.shapes === shapesOf.get(it.image)));
    // Right exactly when the image holds one shape.
    const r = await evaluateShapes(items, async (it) => (it.shapes === 1 ? it.expected : 'wrong'));
    for (const [task, per] of Object.entries(r.byTaskAndShapes)) {
      for (const [n, s] of Object.entries(per)) {
        assert.equal(s.total, items.filter((it) => it.task === task && it.shapes === Number(n)).length);
        assert.equal(s.exact, Number(n) === 1 ? s.total : 0, `${task} with ${n} shapes`);
      }
    }
    const captions = r.byTaskAndShapes.caption;
    assert.ok(captions, 'caption scores');
    assert.equal(Object.values(captions).reduce((a, s) => a + s.total, 0), 12);
    assert.match(formatShapesEval(r), /by shapes in the image:\s+1\s+2\s+3\n\s+caption\s+\d+\/\d+\s+0\/\d+\s+0\/\d+/);
    assert.throws(() => withShapeCounts(items, '{"image":"a.png"}\n', 's.jsonl'), /s\.jsonl:1: expected a scene/);
    assert.throws(() => withShapeCounts(items, '\n{oops\n', 's.jsonl'), /s\.jsonl:2: invalid JSON/);
    assert.throws(() => withShapeCounts(items, 'null\n', 's.jsonl'), /s\.jsonl:1: expected a scene/);
    // Without scenes the breakdown is empty and not printed.
    const [firstExample] = examples;
    assert.ok(firstExample, 'an example');
    const plain = await evaluateShapes(evalItems(firstExample.conversations, file), async (it) => it.expected);
    assert.deepEqual(plain.byTaskAndShapes, {});
    assert.doesNotMatch(formatShapesEval(plain), /by shapes/);
  });
});
