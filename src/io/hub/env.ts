import os from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';

/** Environment the hub code reads; tests pass their own instead of mutating process.env. */
export type HubEnv = Readonly<Record<string, string | undefined>>;

const expandHome = (p: string) => (p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p);

// huggingface_hub constants.py: HF_HOME = $HF_HOME or $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface
export function hfHome(env: HubEnv): string {
  if (env.HF_HOME) return expandHome(env.HF_HOME);
  const xdg = env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(xdg, 'huggingface');
}

// constants.py: HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE (legacy) > HF_HOME/hub
export function hubCacheDir(env: HubEnv): string {
  const dir = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  return dir ? expandHome(dir) : path.join(hfHome(env), 'hub');
}

const TRUE_VALUES = new Set(['1', 'ON', 'YES', 'TRUE']);

// constants.py: HF_HUB_OFFLINE = _is_true(HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE)
export function isOffline(env: HubEnv): boolean {
  const v = env.HF_HUB_OFFLINE || env.TRANSFORMERS_OFFLINE;
  return v !== undefined && TRUE_VALUES.has(v.trim().toUpperCase());
}

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export function hubEndpoint(env: HubEnv): string {
  return (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/** HF_TOKEN, then the legacy HUGGING_FACE_HUB_TOKEN, then the file `huggingface-cli login` writes. */
export function hubToken(env: HubEnv): string | undefined {
  const fromEnv = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (fromEnv) return fromEnv.trim();
  const tokenPath = env.HF_TOKEN_PATH ? expandHome(env.HF_TOKEN_PATH) : path.join(hfHome(env), 'token');
  try {
    const token = readFileSync(tokenPath, 'utf8').trim();
    return token.length > 0 ? token : undefined;
  } catch {
    return undefined;
  }
}
