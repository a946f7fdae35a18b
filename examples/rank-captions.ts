// Rank candidate captions for an image. With a VLM (SmolVLM, LLaVA) a caption's score is its
// log-likelihood as the answer; with CLIP / SigLIP (--model a CLIPModel folder) it is the scaled cosine.
//   npx tsx examples/rank-captions.ts [--image PATH] [--model DIR]
import { rank, rankOrder } from '../src/index.ts';
import { modelDir, option, photo, say } from './common.ts';

const image = option('image', photo('rocket.jpg'));
const captions = ['A rocket on a launch pad.', 'A cat sleeping on a sofa.', 'A bowl of fruit on a table.', 'An astronaut in a white suit.'];
const result = await rank(modelDir(), [image], captions);
say(`${result.method} scores (${result.scoreKind}), best first:`);
const [scores] = result.scores; // one image: its score for each caption
if (!scores) throw new Error('rank returned no scores for the image');
for (const j of rankOrder(scores)) say(`  ${scores[j]!.toFixed(3).padStart(9)}  ${captions[j]}`); // rankOrder: indices into scores
