// Child process for media-memory.test.ts: loads one request's media through the SmolVLM processor
// and prints {frames, tiles, maxRssMb} or {error} as JSON, so the parent can read this process's peak RSS.
//   node --import tsx test/hardening/media-memory-child.ts MODEL_DIR (image|video) FILE [MAX_IMAGE_PIXELS]
import { VlmProcessor } from '../../src/processing/processor.ts';

const [model, kind, file, maxImagePixels] = process.argv.slice(2);
if (!model || !kind || !file) throw new Error('usage: media-memory-child.ts MODEL_DIR (image|video) FILE [MAX_IMAGE_PIXELS]');
const processor = await VlmProcessor.load(model);
const options = maxImagePixels ? { maxImagePixels: Number(maxImagePixels) } : {};
try {
  const out = await processor.fromMessages([{ role: 'user', content: [{ type: kind, [kind]: file }, { type: 'text', text: 'x' }] }], options);
  process.stdout.write(JSON.stringify({ frames: out.videos[0]?.timestamps.length ?? 0, tiles: out.pixelShape?.[1], maxRssMb: process.resourceUsage().maxRSS / 1024 }));
} catch (e) {
  process.stdout.write(JSON.stringify({ error: (e as Error).message, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
}
