// Node globals the engine's shared code uses, as the browser bundle sees them (scripts/build-web.mjs
// injects this file: each free `process` / `setImmediate` in the bundle becomes these). `process.env`
// is empty, so every TFVLM_* setting takes its default; `process.versions.node` is absent, so tfjs and
// the Emscripten glue take their browser paths. setImmediate yields to the event loop through a
// MessageChannel (setTimeout(0) is clamped to 4 ms once nested: that would cost 4 ms a token).
export const process = {
  env: {} as Record<string, string | undefined>,
  versions: {} as Record<string, string>,
  platform: 'browser',
  emitWarning(message: string): void {
    console.warn(message);
  },
};

const channel = typeof MessageChannel === 'function' ? new MessageChannel() : undefined;
const queue: (() => void)[] = [];
if (channel) {
  channel.port1.onmessage = () => queue.shift()?.();
}

export function setImmediate(fn: () => void): void {
  if (!channel) {
    setTimeout(fn, 0);
    return;
  }
  queue.push(fn);
  channel.port2.postMessage(0);
}
