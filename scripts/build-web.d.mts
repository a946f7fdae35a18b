// Types of scripts/build-web.mjs, for the tests that import it.
import type { Metafile } from 'esbuild';

export const BROWSER_MODULES: Record<string, string>;
export const NODE_ONLY_PACKAGES: string[];
export const WASM_ASSETS: string[];

export interface NodeOnlyImport {
  /** The module that imports it, relative to the checkout. */
  importer: string;
  /** The import as written: `node:fs`, `worker_threads`, `ioredis`, … */
  path: string;
  /** Entry → … → importer → path. */
  chain: string[];
}

export interface BrowserBundle {
  metafile: Metafile;
  nodeOnly: NodeOnlyImport[];
  outfile: string;
  bytes: number;
  gzipBytes: number;
}

export function bundleForBrowser(options?: { entry?: string; outdir?: string; write?: boolean; substitutes?: Record<string, string> }): Promise<BrowserBundle>;
export function describeNodeOnly(nodeOnly: NodeOnlyImport[]): string;
