export { resolveModel } from './resolve-model.ts';
export { downloadModel, type DownloadResult } from './download.ts';
export type { HubOptions } from './options.ts';
export { formatProgress, ttyProgressReporter, type DownloadProgress, type ProgressCallback } from './progress.ts';
export { hubCacheDir, isOffline, hubEndpoint, type HubEnv } from './env.ts';
export { parseHubId, looksLikeHubId, repoFolder } from './cache.ts';
export { MODEL_FILES } from './model-files.ts';
