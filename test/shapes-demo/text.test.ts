import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.ts';
import { countShapesDataset, shapesExamples } from '../../examples/shapes-demo/dataset.ts';
import { sampleScene, type Scene, type SceneShape } from '../../examples/shapes-demo/scene.ts';
import {
  CAPTION_PROMPT, QUESTION_TYPES, VOCABULARY, caption, candidateQuestions, sampleQuestions, textTokens,
} from '../../examples/shapes-demo/text.ts';

function scene(...shapes: [SceneShape['shape'], SceneShape['color'], number][]): Scene {
  const names = ['top left', 'top', 'top right', 'left', 'center', 'right', 'bottom left', 'bottom', 'bottom right'] as const;
  return {
    image: 'images/000000.png',
    width: 96,
    height: 96,
    shapes: shapes.map(([shape, color, cell]) => {
      const position = names[cell];
      assert.ok(position, `no cell ${cell}`);
      return { shape, color, cell, position, x: 0, y: 0, size: 24 };
    }),
  };
}

describe('shapes dataset text', () => {
  it('captions list shapes in cell order with "at the" / "in the center"', () => {
    assert.equal(caption(scene(['circle', 'red', 0], ['square', 'blue', 4])), 'a red circle at the top left, a blue square in the center.');
    assert.equal(caption(scene(['triangle', 'yellow', 5])), 'a yellow triangle at the right.');
    assert.equal(
      caption(scene(['square', 'green', 1], ['circle', 'green', 3], ['triangle', 'red', 8])),
      'a green square at the top, a green circle at the left, a red triangle at the bottom right.',
    );
  });

  it('asks only questions the scene determines', () => {
    const two = scene(['circle', 'red', 0], ['circle', 'red', 4], ['square', 'blue', 7]);
    const qs = (t: (typeof QUESTION_TYPES)[number]) => candidateQuestions(two, t).map((q) => `${q.question} ${q.answer}`);
    assert.deepEqual(qs('count'), ['How many shapes are there? three']);
    assert.deepEqual(qs('color'), ['What color is the square? blue']); // two circles: not asked
    assert.deepEqual(qs('where'), ['Where is the blue square? bottom']); // red circle not unique
    assert.deepEqual(qs('shape'), [
      'What shape is at the top left? circle',
      'What shape is in the center? circle',
      'What shape is at the bottom? square',
    ]);
    const exists = candidateQuestions(two, 'exists');
    assert.equal(exists.length, 12);
    assert.deepEqual(exists.filter((q) => q.answer === 'yes').map((q) => q.question), [
      'Is there a red circle?',
      'Is there a blue square?',
    ]);
  });

  it('samples distinct questions, capped by what the scene allows', () => {
    const rng = new Rng(1);
    const one = scene(['circle', 'red', 4]);
    const all = sampleQuestions(rng, one, 100);
    // count 1 + color 1 + shape 1 + exists 12 + where 1
    assert.equal(all.length, 16);
    assert.equal(new Set(all.map((q) => q.question)).size, 16);
    assert.deepEqual(sampleQuestions(rng, one, 0), []);
  });

  it('uses only VOCABULARY tokens, and every VOCABULARY token is used', () => {
    assert.deepEqual([...VOCABULARY], [...VOCABULARY].sort());
    assert.equal(new Set(VOCABULARY).size, VOCABULARY.length);
    const vocab = new Set(VOCABULARY);
    const used = new Set<string>();
    const check = (text: string) => {
      assert.match(text, /^[A-Za-z]+(?:,? [A-Za-z]+)*[.?]?$/, `unexpected spacing or characters in '${text}'`);
      for (const t of textTokens(text)) {
        assert.ok(vocab.has(t), `'${t}' (in '${text}') is not in VOCABULARY`);
        used.add(t);
      }
    };
    check(CAPTION_PROMPT);
    for (const ex of shapesExamples({ n: 300, seed: 2, questionsPerImage: 4 })) {
      for (const c of ex.conversations) {
        for (const m of c.messages) for (const p of m.content) if (p.type === 'text') check(p.text);
      }
      for (const t of QUESTION_TYPES) for (const q of candidateQuestions(ex.scene, t)) (check(q.question), check(q.answer));
    }
    assert.deepEqual(VOCABULARY.filter((w) => !used.has(w)), []);
  });

  it('yes and no answers are balanced and every question type is common', () => {
    const counts = countShapesDataset({ n: 2000, seed: 9, questionsPerImage: 3 });
    const yesNo = counts.yes + counts.no;
    assert.equal(yesNo, counts.byTask.exists);
    assert.ok(Math.abs(counts.yes / yesNo - 0.5) < 0.05, `yes ${counts.yes} / no ${counts.no}`);
    for (const t of QUESTION_TYPES) {
      assert.ok(counts.byTask[t] > 0.12 * counts.questions, `${t}: ${counts.byTask[t]} of ${counts.questions}`);
    }
  });

  it('shape counts, kinds, colours and cells are all covered roughly uniformly', () => {
    const rng = new Rng(123);
    const tally = new Map<string, number>();
    const bump = (k: string) => tally.set(k, (tally.get(k) ?? 0) + 1);
    for (let i = 0; i < 3000; i++) {
      const sc = sampleScene(rng, 96, 'x.png');
      bump(`n${sc.shapes.length}`);
      for (const s of sc.shapes) (bump(s.shape), bump(s.color), bump(s.position));
    }
    for (const n of ['n1', 'n2', 'n3']) assert.ok(Math.abs(tally.get(n)! / 3000 - 1 / 3) < 0.04, n);
    const shapesTotal = 2 * 3000; // E[count] = 2
    for (const k of ['circle', 'square', 'triangle']) assert.ok(Math.abs(tally.get(k)! / shapesTotal - 1 / 3) < 0.04, k);
    for (const k of ['red', 'green', 'blue', 'yellow']) assert.ok(Math.abs(tally.get(k)! / shapesTotal - 1 / 4) < 0.04, k);
    for (const k of ['top left', 'center', 'bottom right']) assert.ok(Math.abs(tally.get(k)! / shapesTotal - 1 / 9) < 0.03, k);
  });
});
