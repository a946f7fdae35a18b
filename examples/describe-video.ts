// Describe a video (SmolVLM2 style): frames sampled at the model's video_sampling fps / max_frames from a
// video file (needs ffmpeg), an animated GIF or a folder of frames, each with its timestamp in the prompt.
//   npx tsx examples/describe-video.ts [--video PATH] [--model DIR]
import { Vlm, videoRequest } from '../src/index.ts';
import { asset, maxNewTokens, modelDir, option, say } from './common.ts';

const vlm = await Vlm.load(modelDir());
// Loading the clip first shows which frames were kept; a path works in the request too.
const clip = await vlm.processor.loadVideo(option('video', asset('moving-square.gif')));
say(`${clip.frames.length} frames at ${clip.timestamps.map((t) => `${t.toFixed(2)}s`).join(', ')} of ${clip.duration.toFixed(2)}s`);
const answer = await vlm.generate(videoRequest(clip, 'Describe this video.'), { maxNewTokens: maxNewTokens() });
say(answer.text.trim());
vlm.dispose();
