// Caption an image, streaming the answer as it is generated.
//   npx tsx examples/caption-image.ts [--image PATH] [--model DIR]
import { Vlm } from '../src/index.ts';
import { maxNewTokens, modelDir, option, photo, write } from './common.ts';

const vlm = await Vlm.load(modelDir());
const image = option('image', photo('astronaut.png'));
const request = { messages: [{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: 'Describe this image.' }] }] };
for await (const piece of vlm.stream(request, { maxNewTokens: maxNewTokens() })) write(piece);
write('\n');
vlm.dispose();
