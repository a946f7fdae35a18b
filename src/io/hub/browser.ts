// The browser bundle's model resolution (scripts/build-web.mjs swaps io/hub/index.ts for this file):
// a model is a folder URL, fetched through the browser host (ranges, Cache API) before it is loaded.
// There is no Hugging Face cache in a page; `org/name` ids are refused by name.
import { TfvlmError } from '../../errors.ts';
import { browserHost, type MountOptions } from '../host-browser.ts';
import { host } from '../host.ts';
import type { HubOptions } from './options.ts';

export type { HubOptions } from './options.ts';

/** Fetches the model folder at `spec` (a URL, absolute or relative to the page) and returns its URL. */
export async function resolveModel(spec: string, _options: HubOptions = {}, mount: MountOptions = {}): Promise<string> {
  if (host() !== browserHost) return spec;
  // Mounted and not yet loaded from (loadVlm mounts with its progress and cache options first).
  if (browserHost.isMounted(spec)) return new URL(spec.endsWith('/') ? spec : `${spec}/`, browserHost.cwd()).href;
  if (/^[\w-]+\/[\w.-]+(@[\w./-]+)?$/.test(spec) && !spec.startsWith('.')) {
    const asUrl = new URL(spec, browserHost.cwd()).href;
    // A relative folder `weights/x` and a hub id `org/x` look alike: try the folder, name both on failure.
    try {
      return await browserHost.mount(asUrl, mount);
    } catch (e) {
      throw new TfvlmError(`${spec}: not a model folder at ${asUrl} (${(e as Error).message}); in the browser a model is a folder URL, not a Hugging Face hub id`);
    }
  }
  return browserHost.mount(spec, mount);
}

export async function downloadModel(spec: string): Promise<never> {
  throw new TfvlmError(`cannot download ${spec}: the browser build loads model folders by URL (Vlm.load(url))`);
}
