// Types of web-server.mjs, for the tests that start it.
export const MOUNTS: [prefix: string, folder: string][];
export function fileFor(urlPath: string): string | undefined;
export function parseRange(header: string | undefined, size: number): [number, number] | 'unsatisfiable' | undefined;
export function startWebServer(options?: { host?: string; port?: number; isolated?: boolean }): Promise<{ url: string; close(): Promise<void> }>;
