// The images of a chat request, fetched (image-url.ts) and decoded here, so that every image error —
// unreadable, corrupt, past the pixel budget — is a 400 naming its `image_url.url` field; the engine
// then gets decoded bitmaps and fetches nothing itself.
import { TfvlmError } from '../errors.ts';
import { loadImage, type DecodedImage } from '../io/image.ts';
import { PixelBudget, type PixelLimits } from '../io/pixel-budget.ts';
import type { VlmRequest } from '../processing/processor.ts';
import { badRequest } from './api-error.ts';
import type { ChatCompletionParams } from './chat-request.ts';
import { imageBytes, type ImagePolicy } from './image-url.ts';

/** The engine's request for `params`, its images loaded in order (one at a time: one image's bytes in memory at once). */
export async function toVlmRequest(params: ChatCompletionParams, policy: ImagePolicy, limits: PixelLimits, signal?: AbortSignal): Promise<VlmRequest> {
  const budget = new PixelBudget(limits);
  const decoded: DecodedImage[] = [];
  for (const [k, ref] of params.images.entries()) {
    signal?.throwIfAborted();
    const bytes = await imageBytes(ref, policy, signal);
    try {
      decoded.push(await loadImage(bytes, String(k), budget));
    } catch (e) {
      if (e instanceof TfvlmError) throw badRequest(ref.param, e.message, 'invalid_image');
      throw e;
    }
  }
  const messages = params.messages.map((m) => ({
    role: m.role,
    content: typeof m.content === 'string' ? m.content
      : m.content.map((p) => (p.type === 'text' ? p : { type: 'image', image: decoded[p.image]! })),
  }));
  return { messages };
}
