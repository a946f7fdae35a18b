// A chat with a system message over several turns; each turn reuses the KV cache of the earlier ones.
//   npx tsx examples/chat-with-system.ts [--image PATH] [--model DIR]
import { Vlm } from '../src/index.ts';
import { maxNewTokens, modelDir, option, photo, say } from './common.ts';

const vlm = await Vlm.load(modelDir());
const chat = vlm.conversation({ system: 'You are a helpful assistant who answers in one short sentence.' });
const turns: unknown[] = [
  [{ type: 'image', image: option('image', photo('chelsea.png')) }, { type: 'text', text: 'What animal is this?' }],
  'What colour is its fur?',
  'Where might it be sitting?',
];
for (const turn of turns) {
  const reply = await chat.say(turn as string, { maxNewTokens: maxNewTokens() });
  const said = typeof turn === 'string' ? turn : '[image] What animal is this?';
  say(`User: ${said}\nAssistant: ${reply.text.trim()}   (prefilled ${chat.lastPrefillTokens} new tokens)\n`);
}
chat.dispose();
vlm.dispose();
