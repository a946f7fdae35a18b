// The host used when none is installed: Node's. The browser bundle (scripts/build-web.mjs) swaps this
// module for host-default.browser.ts, so node:fs never enters it.
import type { Host } from './host.ts';
import { nodeHost } from './host-node.ts';

export function defaultHost(): Host {
  return nodeHost;
}
