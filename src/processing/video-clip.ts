// A video sampled and resized for a SmolVLM-family model (SmolVLMVideoProcessor.load); requests may carry
// one in a `{type: "video", video: clip}` part so a video is decoded once.
import type { VideoMetadata } from '../io/video.ts';
import type { Bitmap } from '../io/bitmap.ts';

/** A sampled video ready for the model: frames already resized to the frame size, and their times. */
export class VideoClip {
  constructor(
    /** RGB frames at `max_image_size` (uint8, before rescale/normalize). */
    readonly frames: Bitmap[],
    /** Seconds from the start of each frame. */
    readonly timestamps: number[],
    /** Source frame index of each frame. */
    readonly indices: number[],
    readonly metadata: VideoMetadata,
  ) {}

  /** Seconds (transformers' VideoMetadata.duration). */
  get duration(): number {
    return this.metadata.duration;
  }
}
