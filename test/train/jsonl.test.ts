// The JSONL conversation reader (src/train/jsonl.ts), on conversations of the shapes demo dataset.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { shapesExamples } from '../../examples/shapes-demo/dataset.ts';
import { parseJsonl, toJsonl, validateConversation, type Conversation } from '../../src/train/jsonl.ts';

const conversations = (): Conversation[] =>
  [...shapesExamples({ n: 10, seed: 4, questionsPerImage: 2 })].flatMap((ex) => ex.conversations);

describe('JSONL conversations', () => {
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
