// Describe a video (SmolVLM2 style): frames sampled at the model's video_sampling fps / max_frames from a
// video file (needs ffmpeg), an animated GIF or a folder of frames, each with its timestamp in the prompt.
//   npx tsx examples/describe-video.ts [--video PATH] [--model DIR]
import { Vlm, videoRequest } from '../src/index.ts';
import { asset, maxNewTokens, modelDir, option, say } from './common.ts';

const vlm = await Vlm.load(modelDir());
const { request, options, video } = await videoRequest(vlm, option('video', asset('moving-square.gif')), 'Describe this video.');
say(`${video.frames.length} frames at ${video.timestamps.map((t) => `${t.toFixed(2)}s`).join(', ')} of ${video.metadata.duration.toFixed(2)}s`);
const answer = await vlm.generate(request, { ...options, maxNewTokens: maxNewTokens() });
say(answer.text.trim());
vlm.dispose();
