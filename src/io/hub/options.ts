import { hubCacheDir, hubEndpoint, hubToken, isOffline, type HubEnv } from './env.ts';
import type { HubClient } from './http.ts';
import { ttyProgressReporter, type ProgressCallback } from './progress.ts';

/** Options shared by resolveModel and downloadModel; each falls back to the environment (`env`, default process.env). */
export interface HubOptions {
  revision?: string;
  env?: HubEnv;
  /** Default: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Default: HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Default: HF_TOKEN, else the token file of `huggingface-cli login`. */
  token?: string;
  /** Default: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is 1/ON/YES/TRUE. */
  offline?: boolean;
  /** Called after every chunk; when absent a progress bar goes to stderr if it is a terminal. */
  onProgress?: ProgressCallback;
  /** false: no progress bar even on a terminal. */
  progress?: boolean;
  /** Attempts to resume a cut transfer before giving up (default 5, reset whenever bytes arrive). */
  maxRetries?: number;
  /** Pause before a resume attempt (default 1000 ms). */
  retryDelayMs?: number;
  /** A transfer with no bytes for this long is cut and resumed (default HF_HUB_DOWNLOAD_TIMEOUT s, else 10 s). */
  idleTimeoutMs?: number;
  /** Limit for the listing and metadata requests (default HF_HUB_ETAG_TIMEOUT s, else 10 s). */
  metadataTimeoutMs?: number;
}

export interface ResolvedHubOptions {
  cacheDir: string;
  client: HubClient;
  offline: boolean;
  onProgress?: ProgressCallback;
  maxRetries: number;
  retryDelayMs: number;
  idleTimeoutMs: number;
  metadataTimeoutMs: number;
}

const secondsToMs = (v: string | undefined, fallbackMs: number) => {
  const s = v === undefined ? NaN : Number(v);
  return Number.isFinite(s) && s > 0 ? s * 1000 : fallbackMs;
};

export function resolveHubOptions(opts: HubOptions): ResolvedHubOptions {
  const env = opts.env ?? process.env;
  return {
    cacheDir: opts.cacheDir ?? hubCacheDir(env),
    client: { endpoint: (opts.endpoint ?? hubEndpoint(env)).replace(/\/+$/, ''), token: opts.token ?? hubToken(env) },
    offline: opts.offline ?? isOffline(env),
    onProgress: opts.onProgress ?? (opts.progress === false ? undefined : ttyProgressReporter()),
    maxRetries: opts.maxRetries ?? 5,
    retryDelayMs: opts.retryDelayMs ?? 1000,
    // huggingface_hub constants.py: DEFAULT_ETAG_TIMEOUT and DEFAULT_DOWNLOAD_TIMEOUT are 10 s
    idleTimeoutMs: opts.idleTimeoutMs ?? secondsToMs(env.HF_HUB_DOWNLOAD_TIMEOUT, 10_000),
    metadataTimeoutMs: opts.metadataTimeoutMs ?? secondsToMs(env.HF_HUB_ETAG_TIMEOUT, 10_000),
  };
}
