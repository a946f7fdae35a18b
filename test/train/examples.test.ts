import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { initBackend } from '../../src/backend/index.ts';
import { buildExample } from '../../src/train/examples.ts';
import { collate, disposeBatch } from '../../src/train/batch.ts';
import { tinySetup, type TinySetup } from './tiny.ts';
import path from 'node:path';

let s: TinySetup;

before(async () => {
  await initBackend();
  s = await tinySetup();
});
after(() => fs.rmSync(s.root, { recursive: true, force: true }));

describe('training examples', () => {
  it('masks exactly the assistant tokens: the answer text and its end-of-turn token', () => {
    const tok = s.processor.tokenizer;
    for (const e of s.examples) {
      const ids = Array.from(e.input_ids);
      const masked = ids.filter((_, i) => e.assistant_mask[i]);
      const first = ids.findIndex((_, i) => e.assistant_mask[i]);
      assert.deepEqual(ids.slice(first - 2, first).map((id) => tok.idToToken(id)), ['Assistant', ':'], 'the span starts right after "Assistant:"');
      assert.equal(masked.at(-1), tok.tokenToId('<end_of_utterance>'));
      assert.ok(masked.every((_, k) => e.assistant_mask[first + k] === 1), 'one contiguous span');
      const text = tok.decode(masked, { skipSpecialTokens: true });
      assert.ok(text.length > 0 && !text.includes('Assistant'), text);
    }
    const caption = s.examples[0];
    assert.ok(caption, 'an example');
    const ids = Array.from(caption.input_ids);
    assert.equal(s.processor.tokenizer.decode(ids.filter((_, i) => caption.assistant_mask[i]), { skipSpecialTokens: true }),
      JSON.parse(fs.readFileSync(path.join(s.root, 'data', 'data.jsonl'), 'utf8').split('\n')[0]!).messages[1].content[0].text);
  });

  it('marks every assistant turn of a multi-turn conversation and nothing of the user turns', async () => {
    const conv = {
      messages: [
        { role: 'user' as const, content: [{ type: 'image' as const, image: 'images/000000.png' }, { type: 'text' as const, text: 'How many shapes are there?' }] },
        { role: 'assistant' as const, content: [{ type: 'text' as const, text: 'two' }] },
        { role: 'user' as const, content: [{ type: 'text' as const, text: 'Is there a red circle?' }] },
        { role: 'assistant' as const, content: [{ type: 'text' as const, text: 'no' }] },
      ],
    };
    const e = await buildExample(s.processor, conv, 'test', { jsonlFile: path.join(s.root, 'data', 'data.jsonl') });
    const tok = s.processor.tokenizer;
    const masked = Array.from(e.input_ids).filter((_, i) => e.assistant_mask[i]).map((id) => tok.idToToken(id));
    assert.deepEqual(masked, ['two', '<end_of_utterance>', 'no', '<end_of_utterance>']);

    // Turn weighting: each answer weighs 1 in all, the 2-token answers of this conversation as much
    // as the caption's many tokens.
    const caption = s.examples[0];
    assert.ok(caption, 'an example');
    const byToken = collate([e, caption], 0);
    const byTurn = collate([e, caption], 0, 'turn');
    const T = byTurn.input_ids.shape[1];
    const row = (w: Float32Array, r: number) => Array.from(w.slice(r * T, (r + 1) * T)).filter((x) => x > 0);
    assert.deepEqual(row(byTurn.weights, 0), [0.5, 0.5, 0.5, 0.5]);
    const captionTokens = row(byToken.weights, 1).length;
    assert.ok(captionTokens > 4);
    for (const w of row(byTurn.weights, 1)) assert.ok(Math.abs(w - 1 / captionTokens) < 1e-7);
    assert.equal(byTurn.supervised, 3);
    assert.equal(byToken.supervised, 4 + captionTokens);
    assert.deepEqual(Array.from(byTurn.weights).map((w) => w > 0), Array.from(byToken.weights).map((w) => w > 0));
    disposeBatch(byToken);
    disposeBatch(byTurn);
  });

  it('collate pads on the right and predicts the next token only where it is an assistant token', () => {
    const ex = s.examples.slice(0, 3);
    const b = collate(ex, 0);
    const T = b.input_ids.shape[1];
    assert.equal(T, Math.max(...ex.map((e) => e.input_ids.length)));
    ex.forEach((e, r) => {
      for (let t = 0; t < T; t++) {
        const inside = t + 1 < e.input_ids.length;
        assert.equal(b.weights[r * T + t], inside && e.assistant_mask[t + 1] ? 1 : 0);
        if (inside) assert.equal(b.targets[r * T + t], e.input_ids[t + 1]);
        assert.equal(b.attention_mask[r * T + t], t < e.input_ids.length ? 1 : 0);
      }
    });
    assert.deepEqual(b.pixel_values!.shape, [3, 1, 3, 32, 32]);
    disposeBatch(b);
  });
});
