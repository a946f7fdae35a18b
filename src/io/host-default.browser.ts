// The browser bundle's default host (scripts/build-web.mjs swaps host-default.ts for this file).
import type { Host } from './host.ts';
import { browserHost } from './host-browser.ts';

export function defaultHost(): Host {
  return browserHost;
}
