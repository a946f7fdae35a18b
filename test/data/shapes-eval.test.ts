import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { shapesExamples } from '../../src/data/shapes.ts';
import { parseJsonl, toJsonl, validateConversation, type Conversation } from '../../src/data/jsonl.ts';
import {
  evalItem, evalItems, evaluateShapes, formatShapesEval, scoreAnswers, selectEvalItems, splitByKind,
} from '../../src/eval/shapes-eval.ts';
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
    assert.equal(captions[0].image, path.resolve('/data/eval/images/000000.png'));

    const some = selectEvalItems(evalItems(convs, file), { captions: 3, questions: 5 });
    assert.deepEqual(some.map((it) => it.kind).sort(), [...Array(3).fill('caption'), ...Array(5).fill('qa')]);
    assert.equal(selectEvalItems(evalItems(convs, file), {}).length, 30);

    const bare = { messages: convs[0].messages };
    assert.equal(evalItem(bare, file).kind, 'caption');
    assert.equal(evalItem({ messages: convs[1].messages }, file).kind, 'qa');
    assert.throws(() => evalItem({ messages: [convs[0].messages[0]] }, file), TfvlmError);
    // A multi-turn conversation would otherwise be scored on its first answer only.
    const turns = [...shapesExamples({ n: 3, seed: 4, questionsPerImage: 4, questionsPerConversation: 2 })][0].conversations[1];
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

  it('JSONL round-trips conversations and rejects malformed lines with file and line', () => {
    const convs = conversations();
    const text = toJsonl(convs);
    assert.equal(text.split('\n').length, convs.length + 1);
    assert.deepEqual(parseJsonl(text), convs);
    assert.throws(() => parseJsonl('{"messages":[]}\n{oops\n', 'x.jsonl'), /x\.jsonl:2: invalid JSON/);
    assert.throws(() => validateConversation({ messages: [] }, 'x.jsonl: conversation 1'), /non-empty/);
    assert.throws(
      () => validateConversation({ messages: [{ role: 'bot', content: [] }] }, 'c'),
      /messages\[0\]\.role/,
    );
    assert.throws(
      () => validateConversation({ messages: [{ role: 'user', content: [{ type: 'image', url: 'a.png' }] }] }, 'c'),
      /messages\[0\]\.content\[0\]/,
    );
  });
});
