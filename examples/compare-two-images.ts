// Compare two images: both go in one user turn, each split into tiles according to its own size.
//   npx tsx examples/compare-two-images.ts [--first PATH] [--second PATH] [--model DIR]
import { Vlm } from '../src/index.ts';
import { maxNewTokens, modelDir, option, photo, say } from './common.ts';

const vlm = await Vlm.load(modelDir());
const first = option('first', photo('horse.png'));
const second = option('second', photo('camera.png'));
const answer = await vlm.generate({
  messages: [{
    role: 'user',
    content: [{ type: 'image', image: first }, { type: 'image', image: second }, { type: 'text', text: 'What is different between these two images?' }],
  }],
}, { maxNewTokens: maxNewTokens() });
say(answer.text.trim());
vlm.dispose();
