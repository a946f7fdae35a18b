// Ask a question about a chart (visual question answering).
//   npx tsx examples/ask-about-chart.ts [--image PATH] [--question TEXT] [--model DIR]
import { Vlm } from '../src/index.ts';
import { asset, maxNewTokens, modelDir, option, say } from './common.ts';

const vlm = await Vlm.load(modelDir());
const image = option('image', asset('bar-chart.png'));
const question = option('question', 'Which bar is the tallest, and what colour is it?');
const answer = await vlm.generate(
  { messages: [{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: question }] }] },
  { maxNewTokens: maxNewTokens() },
);
say(`Q: ${question}\nA: ${answer.text.trim()}`);
vlm.dispose();
