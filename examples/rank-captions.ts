// Rank candidate captions for an image. With a VLM (SmolVLM, LLaVA) a caption's score is its
// log-likelihood as the answer; with CLIP / SigLIP (--model a CLIPModel folder) it is the scaled cosine.
//   npx tsx examples/rank-captions.ts [--image PATH] [--model DIR]
import { rank, rankOrder } from '../src/index.ts';
import { modelDir, option, photo, say } from './common.ts';

const image = option('image', photo('rocket.jpg'));
const captions = ['A rocket on a launch pad.', 'A cat sleeping on a sofa.', 'A bowl of fruit on a table.', 'An astronaut in a white suit.'];
const result = await rank(modelDir(), [image], captions);
say(`${result.method} scores (${result.scoreKind}), best first:`);
for (const j of rankOrder(result.scores[0])) say(`  ${result.scores[0][j].toFixed(3).padStart(9)}  ${captions[j]}`);
