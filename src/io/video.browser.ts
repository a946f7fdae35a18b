// The browser bundle's video module (scripts/build-web.mjs swaps io/video.ts for this file): video
// needs ffmpeg or a frame folder on disk, which a page has neither of. Images work as under Node.
import { TfvlmError } from '../errors.ts';
import type { LoadVideoOptions, SampledVideo, VideoSampling } from './video.ts';

export type { LoadVideoOptions, SampledVideo, VideoSampling, VideoMetadata } from './video.ts';

export async function loadVideo(src: string, _sampling: VideoSampling, _opts: LoadVideoOptions = {}): Promise<SampledVideo> {
  throw new TfvlmError(`video ${src}: video input is not supported in the browser build (send frames as images)`);
}
