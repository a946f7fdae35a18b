// The chat requests behind the task commands: captioning and visual question answering are one
// user turn holding the images and an instruction.
import type { ImageSource } from '../io/image.ts';

export const DEFAULT_CAPTION_PROMPT = 'Describe this image.';

/** One user turn: every image (in order), then the text. */
export function userTurn(images: ImageSource[], text: string): { messages: unknown[] } {
  return {
    messages: [{ role: 'user', content: [...images.map((image) => ({ type: 'image', image })), { type: 'text', text }] }],
  };
}

/** Captioning: the images and an instruction (default "Describe this image."). */
export function captionRequest(images: ImageSource[], prompt = DEFAULT_CAPTION_PROMPT) {
  return userTurn(images, prompt);
}

/** Visual question answering: the images and the question. */
export function questionRequest(images: ImageSource[], question: string) {
  return userTurn(images, question);
}
